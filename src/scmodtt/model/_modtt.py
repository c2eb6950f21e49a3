"""MODTT: modular Tensor-Train generative model of paired RNA and protein counts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import fields
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin, VAEMixin
from scvi.utils import setup_anndata_dsp

from .._constants import DEFAULT_MODULES_KEY
from .._validation import missing_and_extra
from ..module import MODTTVAE
from ..module._likelihoods import DISPERSIONS, GENE_LIKELIHOODS, PROTEIN_LIKELIHOODS
from ..nn import COUPLINGS
from ._expression import ExpressionMixin
from ._flow import FlowPriorMixin
from ._membership import layout_from_memberships, read_membership, with_residual_module
from ._ondisk import (
    MODTTDataManager,
    check_backed_mudata,
    check_finite_streamed,
    is_backed,
)
from ._parameters import parameter_counts
from ._query import QueryMixin
from ._statistics import data_statistics
from ._synthetic import SyntheticCellsMixin
from ._training import TrainingMixin
from ._validation import check_finite, check_labels, check_modality, get_matrix

logger = logging.getLogger(__name__)

_MODALITY_ROLES = {"rna_layer": "RNA counts", "protein_layer": "protein (ADT) counts"}


class MODTT(
    TrainingMixin,
    QueryMixin,
    FlowPriorMixin,
    SyntheticCellsMixin,
    ExpressionMixin,
    VAEMixin,
    UnsupervisedTrainingMixin,
    BaseModelClass,
):
    """Modular Tensor-Train VAE for paired RNA + surface protein data :cite:p:`Kolbeinsson2026`.

    Genes and proteins are grouped into modules (``.varm[modules_key]`` of each modality, e.g. from
    :func:`scmodtt.pp.find_modules`). Each module has its own linear encoder to a
    ``module_dim``-dimensional token; the ``(n_modules × module_dim)`` tokens are coupled by a dense
    or a block Tensor-Train linear map, compressed to a ``n_latent``-dimensional Gaussian posterior,
    and decoded symmetrically. With ``labels_key`` the prior of the KL term is a Gaussian per
    label, fitted during training by matching the moments of that label's posteriors (the
    KL-optimal choice); after the autoencoder, :meth:`train` fits a conditional flow over the
    latent code and the library sizes given label and batch (:meth:`fit_flow_prior`), and
    :meth:`sample` draws cells of a chosen cell type from it (``prior="gaussian"``: from the
    per-label Gaussian).

    Parameters
    ----------
    adata
        MuData registered with :meth:`setup_mudata`.
    architecture
        ``"modular"`` (module encoders + coupling) or ``"flat"`` (the reference paper's dense
        autoencoder on the concatenated features, one hidden layer of ``n_hidden`` units).
    coupling
        ``"tt"`` (block Tensor-Train, ``M²·r + d_e²·r`` weights) or ``"dense"``
        (``(M·d_e)²`` weights) coupling of the module tokens.
    module_dim
        Token size ``d_e`` of each module.
    tt_rank
        Integer rank ``r`` of the Tensor-Train coupling.
    n_hidden
        Hidden width of the flat architecture.
    n_latent
        Dimension of the latent space.
    gene_likelihood
        ``"nb"``, ``"zinb"`` or ``"normal"`` (Gaussian on log1p-normalized RNA).
    protein_likelihood
        ``"nb"``, ``"nbmixture"`` (totalVI's background/foreground mixture) or ``"normal"``
        (Gaussian on CLR values).
    dispersion
        ``"gene"``: one inverse dispersion per feature; ``"gene-label"``: one per feature and
        label (cell type), so that each type has its own count noise.
    balance_modalities
        Weight RNA and protein equally by averaging each modality's negative log-likelihood over its
        features (the reference paper's ``(MSE_RNA + MSE_ADT) / 2``). Defaults to ``True`` when
        both likelihoods are ``"normal"`` and ``False`` otherwise.
    module_membership
        ``{"rna": DataFrame, "protein": DataFrame}`` boolean membership tables indexed by var
        names. Read from ``.varm[modules_key]`` when ``None``; stored with the model so that
        :meth:`load` rebuilds the same modules.
    flow_n_hidden, flow_n_layers
        Width and number of residual blocks of the velocity field of the conditional flow prior
        over ``(z, log library sizes)`` that :meth:`sample` draws from (fitted by :meth:`train`,
        see :meth:`fit_flow_prior`).
    protein_dropout
        Probability that a training cell's ADTs are hidden from the encoder (modality dropout), so
        that the encoder also learns to place cells from RNA alone. Set it (e.g. ``0.25``) for a
        reference that will map or impute RNA-only data; cells and batches without ADTs (see
        below) train and map either way.
    adapter_rank
        Rank of the token adapter of a query model (set by :meth:`load_query_data`).

    Notes
    -----
    Missing proteins: an ADT with no counts in a whole batch is treated as unmeasured in that
    batch, and a cell with no ADT counts at all as an RNA-only cell; unmeasured ADTs are left out
    of the protein likelihood and hidden from the encoder, and :meth:`get_normalized_expression`
    imputes them.

    Examples
    --------
    >>> import scmodtt
    >>> mdata = scmodtt.datasets.bmmc_cite()
    >>> scmodtt.pp.find_modules(mdata, n_modules={"rna": 30, "prot": 10})
    >>> scmodtt.MODTT.setup_mudata(
    ...     mdata, labels_key="cell_type", batch_key="batch",
    ...     modalities={"rna_layer": "rna", "protein_layer": "prot"},
    ... )
    >>> model = scmodtt.MODTT(mdata, coupling="tt")
    >>> model.train(max_epochs=50)
    >>> mdata.obsm["X_modtt"] = model.get_latent_representation()
    >>> synthetic = model.sample(n_per_label=200, seed=0)

    """

    _module_cls = MODTTVAE

    def __init__(
        self,
        adata: MuData | None = None,
        architecture: Literal["modular", "flat"] = "modular",
        coupling: Literal["tt", "dense"] = "tt",
        module_dim: int = 8,
        tt_rank: int = 8,
        n_hidden: int = 22,
        n_latent: int = 32,
        gene_likelihood: Literal["nb", "zinb", "normal"] = "nb",
        protein_likelihood: Literal["nb", "nbmixture", "normal"] = "nb",
        dispersion: Literal["gene", "gene-label"] = "gene",
        balance_modalities: bool | None = None,
        module_membership: dict[str, pd.DataFrame] | None = None,
        flow_n_hidden: int = 128,
        flow_n_layers: int = 3,
        protein_dropout: float = 0.0,
        adapter_rank: int = 0,
    ):
        super().__init__(adata)
        _check_choice("architecture", architecture, ("modular", "flat"))
        _check_choice("coupling", coupling, COUPLINGS)
        _check_choice("gene_likelihood", gene_likelihood, GENE_LIKELIHOODS)
        _check_choice("protein_likelihood", protein_likelihood, PROTEIN_LIKELIHOODS)
        _check_choice("dispersion", dispersion, DISPERSIONS)
        if balance_modalities is None:
            balance_modalities = gene_likelihood == "normal" and protein_likelihood == "normal"

        rna_mod, protein_mod = self._modality_names()
        batch_codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
        labels = self._label_codes()
        # Count checks and summaries of all cells; streamed for backed (on-disk) data.
        statistics = data_statistics(
            self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY),
            self.adata_manager.get_from_registry(REGISTRY_KEYS.PROTEIN_EXP_KEY),
            labels,
            batch_codes,
            self.summary_stats.n_labels,
            self.summary_stats.n_batch,
            self._category_mapping(REGISTRY_KEYS.BATCH_KEY),
            {"rna": gene_likelihood, "protein": protein_likelihood},
            {"rna": rna_mod, "protein": protein_mod},
        )

        if module_membership is None:
            module_membership = self._read_module_membership(architecture)
        self._check_features_match(module_membership)
        self.module_membership_ = module_membership
        layout = layout_from_memberships(module_membership["rna"], module_membership["protein"])
        self.module_names_ = layout.module_names
        # Per data set, not saved with the model (hence no trailing underscore).
        self._n_rna_only_cells = statistics.n_rna_only_cells
        self.module_modalities_ = layout.module_modalities

        self.module = self._module_cls(
            n_genes=self.summary_stats.n_vars,
            n_proteins=self.summary_stats.n_proteins,
            n_batch=self.summary_stats.n_batch,
            n_labels=self.summary_stats.n_labels,
            feature_index=layout.feature_index,
            module_index=layout.module_index,
            n_modules=layout.n_modules,
            architecture=architecture,
            coupling=coupling,
            module_dim=module_dim,
            tt_rank=tt_rank,
            n_hidden=n_hidden,
            n_latent=n_latent,
            gene_likelihood=gene_likelihood,
            protein_likelihood=protein_likelihood,
            use_label_prior=self._labels_key() is not None,
            balance_modalities=balance_modalities,
            dispersion=dispersion,
            initial_output_bias=statistics.initial_output_bias,
            library_stats=statistics.library_stats,
            flow_n_hidden=flow_n_hidden,
            flow_n_layers=flow_n_layers,
            protein_observed=statistics.protein_observed,
            protein_dropout=protein_dropout,
            adapter_rank=adapter_rank,
        )
        self.module.trained_batches.copy_(
            torch.as_tensor(np.bincount(batch_codes.ravel(), minlength=self.summary_stats.n_batch))
            > 0
        )
        counts = self.parameter_counts()
        shape = (
            f"{layout.n_modules} modules × module_dim {module_dim}, coupling={coupling!r}"
            + (f" (rank {tt_rank})" if coupling == "tt" else "")
            if architecture == "modular"
            else f"n_hidden {n_hidden}"
        )
        self._model_summary_string = (
            f"MODTT model, architecture={architecture!r}: {shape}, n_latent {n_latent}, "
            f"gene_likelihood={gene_likelihood!r}, protein_likelihood={protein_likelihood!r}, "
            f"dispersion={dispersion!r}.\n"
            "Parameters: " + ", ".join(f"{part} {n:,}" for part, n in counts.items())
        )
        self.init_params_ = self._get_init_params(locals())
        # Keep the membership itself (not None) so `load` rebuilds the same modules.
        self.init_params_["non_kwargs"]["module_membership"] = module_membership

    # ------------------------------------------------------------------ set-up
    @classmethod
    @setup_anndata_dsp.dedent
    def setup_mudata(
        cls,
        mdata: MuData,
        rna_layer: str | None = None,
        protein_layer: str | None = None,
        labels_key: str | None = None,
        batch_key: str | None = None,
        modules_key: str = DEFAULT_MODULES_KEY,
        modalities: dict[str, str] | None = None,
        **kwargs,
    ):
        """Register a MuData of paired RNA and protein counts with MODTT.

        Parameters
        ----------
        mdata
            MuData with raw counts of RNA and protein (ADT).
        rna_layer
            Layer of the RNA modality with raw counts; ``None`` uses ``.X``.
        protein_layer
            Layer of the protein modality with raw counts; ``None`` uses ``.X``.
        labels_key
            Column of ``mdata.obs`` (or of the modality named by ``modalities["labels_key"]``) with
            cell types; enables the per-label prior and conditional :meth:`MODTT.sample`.
        batch_key
            Column with batches; injected into the decoder.
        modules_key
            Key of the boolean module tables in each modality's ``.varm``.
        modalities
            Which modality holds what: ``{"rna_layer": "rna", "protein_layer": "prot"}`` by
            default; ``"batch_key"`` and ``"labels_key"`` may name a modality whose ``.obs`` holds
            the column (``None``: ``mdata.obs``).
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.

        Examples
        --------
        >>> scmodtt.MODTT.setup_mudata(
        ...     mdata,
        ...     labels_key="cell_type",
        ...     modalities={"rna_layer": "rna", "protein_layer": "prot"},
        ... )

        """
        if modalities is None:
            modalities = {"rna_layer": "rna", "protein_layer": "prot"}
        setup_method_args = cls._get_setup_method_args(**locals())
        modalities = cls._create_modalities_attr_dict(modalities, setup_method_args)
        for role, description in _MODALITY_ROLES.items():
            check_modality(mdata, getattr(modalities, role), description)
        if getattr(mdata, "isbacked", False):  # on disk: paired cells, counts readable by rows
            check_backed_mudata(
                mdata,
                {role: getattr(modalities, role) for role in _MODALITY_ROLES},
                {modalities.rna_layer: rna_layer, modalities.protein_layer: protein_layer},
            )
        source_registry = kwargs.get("source_registry")
        for role, layer, registry_key in (
            ("rna_layer", rna_layer, REGISTRY_KEYS.X_KEY),
            ("protein_layer", protein_layer, REGISTRY_KEYS.PROTEIN_EXP_KEY),
        ):
            mod_name = getattr(modalities, role)
            if source_registry is not None:
                # Loading a model or transferring a setup: name the features that differ, before
                # scvi-tools' field transfer fails with only a count mismatch.
                state = source_registry["field_registries"][registry_key]["state_registry"]
                _raise_if_features_differ(
                    mod_name, pd.Index(state["column_names"]), mdata[mod_name].var_names
                )
            matrix = get_matrix(mdata[mod_name], mod_name, layer)
            where = f"Modality {mod_name!r}" + (f" layer {layer!r}" if layer else " `.X`")
            (check_finite_streamed if is_backed(matrix) else check_finite)(matrix, where)
        if labels_key is not None:
            check_labels(mdata, labels_key, modalities.labels_key)

        batch_field = fields.MuDataCategoricalObsField(
            REGISTRY_KEYS.BATCH_KEY, batch_key, mod_key=modalities.batch_key
        )
        mudata_fields = [
            fields.MuDataLayerField(
                REGISTRY_KEYS.X_KEY,
                rna_layer,
                mod_key=modalities.rna_layer,
                is_count_data=False,
                mod_required=True,
            ),
            fields.MuDataCategoricalObsField(
                REGISTRY_KEYS.LABELS_KEY, labels_key, mod_key=modalities.labels_key
            ),
            batch_field,
            fields.MuDataProteinLayerField(
                REGISTRY_KEYS.PROTEIN_EXP_KEY,
                protein_layer,
                mod_key=modalities.protein_layer,
                use_batch_mask=False,
                batch_field=batch_field,
                is_count_data=False,
                mod_required=True,
            ),
        ]
        # scvi-tools' manager; backed mini-batches come in the sampler's order (see the class).
        adata_manager = MODTTDataManager(fields=mudata_fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(mdata, **kwargs)
        cls.register_manager(adata_manager)

    @classmethod
    def setup_anndata(cls, adata, *args, **kwargs):
        """MODTT needs paired modalities: use :meth:`setup_mudata`."""
        raise NotImplementedError(
            "MODTT models RNA and protein together and is set up from a MuData: call "
            "`MODTT.setup_mudata(mdata, modalities={'rna_layer': 'rna', "
            "'protein_layer': 'prot'})`. "
            "Build one from AnnData objects with `mudata.MuData({'rna': rna, 'prot': prot})`."
        )

    # ------------------------------------------------------------------ outputs
    @property
    def module_names(self) -> list[str]:
        """Names of the modules, gene modules first (modular architecture)."""
        return list(self.module_names_)

    def parameter_counts(self) -> pd.Series:
        """Trainable parameters of each part of the network (encoders, coupling, decoders, …)."""
        return parameter_counts(self.module)

    # ------------------------------------------------------------------ registry helpers
    def _modality_names(self) -> tuple[str, str]:
        modalities = self.adata_manager.registry["setup_args"]["modalities"]
        return modalities["rna_layer"], modalities["protein_layer"]

    def _labels_key(self) -> str | None:
        return self.adata_manager.registry["setup_args"].get("labels_key")

    def _batch_key(self) -> str | None:
        return self.adata_manager.registry["setup_args"].get("batch_key")

    def _label_codes(self) -> np.ndarray:
        return (
            np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY))
            .ravel()
            .astype(np.int64)
        )

    def _category_mapping(self, registry_key: str) -> np.ndarray:
        return np.asarray(self.adata_manager.get_state_registry(registry_key).categorical_mapping)

    def _batch_codes_for(self, transform_batch) -> list[int | None]:
        if transform_batch is None:
            return [None]
        batches = self._category_mapping(REGISTRY_KEYS.BATCH_KEY)
        requested = (
            [transform_batch] if isinstance(transform_batch, str | int) else list(transform_batch)
        )
        codes = []
        for batch in requested:
            matches = np.flatnonzero(batches.astype(str) == str(batch))
            if not len(matches):
                raise ValueError(
                    f"Unknown batch {batch!r} in `transform_batch`; known batches: {list(batches)}."
                )
            codes.append(int(matches[0]))
        return codes

    def _read_module_membership(self, architecture: str) -> dict[str, pd.DataFrame]:
        rna_mod, protein_mod = self._modality_names()
        adata = self.adata
        modules_key = self.adata_manager.registry["setup_args"]["modules_key"]
        if architecture == "flat":
            return {
                "rna": pd.DataFrame(index=adata[rna_mod].var_names.copy()),
                "protein": pd.DataFrame(index=adata[protein_mod].var_names.copy()),
            }
        return {
            "rna": with_residual_module(
                read_membership(adata[rna_mod], rna_mod, modules_key), rna_mod
            ),
            "protein": with_residual_module(
                read_membership(adata[protein_mod], protein_mod, modules_key), protein_mod
            ),
        }

    def _check_features_match(self, module_membership: dict[str, pd.DataFrame]) -> None:
        """Raise if the data's features are not those the modules were built on.

        The same holds for the features a saved model was built on.
        """
        for role, mod_name in zip(("rna", "protein"), self._modality_names(), strict=True):
            _raise_if_features_differ(
                mod_name, module_membership[role].index, self.adata[mod_name].var_names
            )


def _raise_if_features_differ(mod_name: str, expected: pd.Index, observed: pd.Index) -> None:
    """Raise a ValueError naming the missing and unexpected features of a modality."""
    if expected.equals(observed):
        return
    missing, extra = missing_and_extra(expected, observed)
    raise ValueError(
        f"The features of modality {mod_name!r} differ from those the model was built "
        f"on ({len(expected)} expected, {len(observed)} given; {len(missing)} missing, "
        f"e.g. {list(missing[:5])}; {len(extra)} unexpected, e.g. {list(extra[:5])}). "
        "Subset and order the data to the model's features: "
        f"`mdata.mod[{mod_name!r}] = mdata[{mod_name!r}][:, model_features]`."
    )


def _check_choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
