"""Reference mapping: new data onto a trained, frozen MODTT (scArches semantics)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scipy import sparse
from scvi import REGISTRY_KEYS, settings
from scvi.data._constants import _MODEL_NAME_KEY, _SETUP_ARGS_KEY
from scvi.model._utils import parse_device_args

# scvi-tools' own scArches helpers: they read a reference (a folder or a model) and build a model
# from saved init parameters. The state-dict surgery is MODTT's own (see `_expand_reference`):
# ArchesMixin's generic padding appends new rows at the end, where MODTT's flow prior keeps its
# "no batch" / "no label" token.
from scvi.model.base._archesmixin import MIN_VAR_NAME_RATIO, _get_loaded_data
from scvi.model.base._save_load import _initialize_model

from .._validation import missing_and_extra
from ._validation import get_matrix

logger = logging.getLogger(__name__)

#: Label given to query cells without one (they are never mapped to a reference label).
UNKNOWN_LABEL = "unknown"

# Buffers a query model computes from its own data instead of taking the reference's.
_QUERY_OWN_STATE = ("protein_observed", "known_labels", "adapted_batches", "priors_frozen")
_FLOW_TOKENS = ("flow_prior.velocity.batch.weight", "flow_prior.velocity.label.weight")
_BATCH_COLUMNS = ("decoder_input.weight", "decoder_body.0.weight")


class QueryMixin:
    """Map query data onto a trained reference :class:`~scmodtt.MODTT`."""

    @classmethod
    def prepare_query_mudata(cls, mdata: MuData, reference_model) -> MuData:
        """A copy of a query MuData laid out like the reference's training data.

        Genes and ADTs are put in the reference's order; reference features the query lacks are
        padded with zero counts (missing ADTs, and a missing protein modality, are then masked:
        the model treats them as unmeasured and imputes them); query features the reference lacks
        are reported and left out. Cells without a label get ``"unknown"`` (labels the reference
        does not know are kept as they are and treated as unknown, never mapped). The query MuData
        itself is not modified.

        Parameters
        ----------
        mdata
            Query cells: an RNA modality named as in the reference, optionally the protein one.
        reference_model
            A trained :class:`~scmodtt.MODTT` or the folder it was saved to.

        Returns
        -------
        A new MuData ready for :meth:`load_query_data`.

        Examples
        --------
        >>> query = scmodtt.MODTT.prepare_query_mudata(query_mdata, reference)
        >>> query_model = scmodtt.MODTT.load_query_data(query, reference)
        >>> query_model.train(max_epochs=100)

        """
        attr_dict, var_names, _, _ = _get_loaded_data(_as_reference(reference_model), device="cpu")
        registry = attr_dict["registry_"]
        _check_reference_class(registry, cls)
        setup_args = registry[_SETUP_ARGS_KEY]
        rna_mod = setup_args["modalities"]["rna_layer"]
        protein_mod = setup_args["modalities"]["protein_layer"]
        if rna_mod not in mdata.mod:
            raise ValueError(
                f"The query has no RNA modality {rna_mod!r} (it has {list(mdata.mod)}). MODTT "
                "maps cells from their RNA; name the query's RNA modality as the reference's: "
                f"`MuData({{{rna_mod!r}: rna, ...}})`."
            )
        rna = mdata[rna_mod]
        genes = _conformed(
            rna, rna_mod, setup_args["rna_layer"], pd.Index(var_names[rna_mod]), "genes"
        )
        reference_adts = pd.Index(var_names[protein_mod])
        if protein_mod in mdata.mod:
            adts = _conformed(
                mdata[protein_mod],
                protein_mod,
                setup_args["protein_layer"],
                reference_adts,
                "ADTs",
                obs_names=rna.obs_names,
            )
        else:
            logger.info(
                "The query has no protein modality %r: all %d reference ADTs are treated as "
                "unmeasured and imputed.",
                protein_mod,
                len(reference_adts),
            )
            adts = _zeros_like_modality(rna.obs_names, reference_adts, setup_args["protein_layer"])
        query = MuData({rna_mod: genes, protein_mod: adts})
        obs = mdata.obs.reindex(rna.obs_names)
        for column in obs.columns:
            if column not in query.obs:
                query.obs[column] = obs[column].to_numpy()
        _fill_query_labels(query, setup_args, registry)
        batch_key = setup_args.get("batch_key")
        batch_obs = _obs_of(query, setup_args["modalities"].get("batch_key"))
        if batch_key is not None and batch_key not in batch_obs:
            raise KeyError(
                f"The reference was set up with `batch_key={batch_key!r}`, which is not a column "
                f"of the query; name the query's batch, e.g. `mdata.obs[{batch_key!r}] = "
                "'query'`, so that the query model learns its own batch."
            )
        return query

    @classmethod
    def load_query_data(
        cls,
        mdata: MuData,
        reference_model,
        adapter_rank: int = 0,
        unfrozen: bool = False,
        accelerator: str = "auto",
        device: int | str = "auto",
    ):
        """A query model on new data, with the reference network frozen (scArches).

        The reference's weights, label prior and flow prior are kept. Training the returned model
        (:meth:`train`) updates only what the query needs: the decoder's weights of the query's
        new batches and, with ``adapter_rank > 0``, a low-rank adapter on the module tokens of
        query cells (:class:`~scmodtt.nn.TokenAdapter`). :attr:`trained_parameter_fraction`
        reports the share of the network that trains. :meth:`sample` on the query model draws the
        reference's cell types decoded in a query batch (``batch=...``).

        Parameters
        ----------
        mdata
            Query MuData with the reference's genes and ADTs in its order
            (see :meth:`prepare_query_mudata`).
        reference_model
            A trained :class:`~scmodtt.MODTT` or the folder it was saved to.
        adapter_rank
            Rank of the per-module token adapter (0: none; modular architecture only).
        unfrozen
            Train every weight of the autoencoder (the priors stay the reference's).
        accelerator, device
            Where to put the query model (scvi-tools' device arguments).

        Examples
        --------
        >>> query = scmodtt.MODTT.prepare_query_mudata(query_mdata, reference)
        >>> query_model = scmodtt.MODTT.load_query_data(query, reference)
        >>> query_model.train(max_epochs=100)
        >>> query_mdata.obsm["X_modtt"] = query_model.get_latent_representation()

        """
        _, _, torch_device = parse_device_args(
            accelerator=accelerator,
            devices=device,
            return_device="torch",
            validate_single_device=True,
        )
        attr_dict, var_names, reference_state, _ = _get_loaded_data(
            _as_reference(reference_model), device=torch_device
        )
        registry = attr_dict.pop("registry_")
        _check_reference_class(registry, cls)
        setup_args = registry[_SETUP_ARGS_KEY]
        for role, what in (("rna_layer", "genes"), ("protein_layer", "ADTs")):
            mod_name = setup_args["modalities"][role]
            if mod_name not in mdata.mod:
                raise ValueError(
                    f"The query has no modality {mod_name!r}; "
                    "`MODTT.prepare_query_mudata(query, reference)` builds one laid out like the "
                    "reference (a missing protein modality becomes unmeasured ADTs)."
                )
            _raise_unless_reference_features(
                mdata[mod_name].var_names, pd.Index(var_names[mod_name]), mod_name, what
            )
        cls.setup_mudata(mdata, source_registry=registry, extend_categories=True, **setup_args)
        # A copy: for an in-memory reference these are the reference model's own init parameters,
        # which must keep its adapter rank (or the reference no longer loads once saved).
        init_params = dict(attr_dict["init_params_"])
        init_params["non_kwargs"] = {**init_params["non_kwargs"], "adapter_rank": adapter_rank}
        attr_dict["init_params_"] = init_params
        model = _initialize_model(cls, mdata, registry, attr_dict, None)
        model.to_device(torch_device)

        n_reference_labels = len(_mapping(registry, REGISTRY_KEYS.LABELS_KEY))
        module = model.module
        module.load_state_dict(_expand_reference(reference_state, module.state_dict()))
        _start_new_batches(module)
        module.known_labels[n_reference_labels:] = False
        query_batches = np.unique(model.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
        module.adapted_batches[torch.as_tensor(query_batches.astype(np.int64))] = True
        # Reference batches without query cells keep the reference's ADT panel (the query's
        # counts would mark all their ADTs unmeasured), so that the query model embeds reference
        # cells as the reference does.
        observed = module.protein_observed
        reference_observed = reference_state["protein_observed"].to(observed.device)
        n_reference_batches = len(reference_observed)
        reference_only = torch.as_tensor(
            ~np.isin(np.arange(n_reference_batches), query_batches), device=observed.device
        )
        observed[:n_reference_batches][reference_only] = reference_observed[reference_only]
        _warn_if_never_trained_without_adts(model)
        module.priors_frozen.fill_(True)
        module.eval()
        if not unfrozen:
            _freeze_reference(module)
        model.is_trained_ = False
        new_labels = model._category_mapping(REGISTRY_KEYS.LABELS_KEY)[n_reference_labels:]
        if len(new_labels):
            logger.info(
                "Query labels unknown to the reference, kept as unknown: %s.", list(new_labels)
            )
        logger.info(
            "Query model trains %.2f%% of the reference's parameters.",
            100 * model.trained_parameter_fraction,
        )
        return model

    @property
    def trained_parameter_fraction(self) -> float:
        """Share of the autoencoder's weights that :meth:`train` updates (1 for a new model).

        Entries whose gradient a query model masks (the reference batches' decoder weights) do
        not count. The flow prior is fitted separately and not counted.
        """
        total, trained = 0, 0
        for name, parameter in self.module.named_parameters():
            if name.startswith("flow_prior."):
                continue
            total += parameter.numel()
            if parameter.requires_grad:
                mask = getattr(parameter, "_query_gradient_mask", None)
                trained += parameter.numel() if mask is None else int(mask.sum())
        return trained / total

    @property
    def is_query_model(self) -> bool:
        """Whether this model maps query data onto a frozen reference (priors kept)."""
        return bool(self.module.priors_frozen)


def _warn_if_never_trained_without_adts(model) -> None:
    """Warn when a reference that never hid ADTs from its encoder meets RNA-only cells."""
    if model.module.protein_dropout > 0:
        return
    n_rna_only = model._n_rna_only_cells  # counted while the model summarised its data
    if n_rna_only:
        warnings.warn(
            f"The reference was trained without modality dropout (`protein_dropout=0`), so its "
            f"encoder never learnt to place cells from their RNA alone, and {n_rna_only} query "
            "cells have no ADT counts. Such cells map poorly (in the transfer benchmark on "
            "REAP-seq: iLISI 0.00 instead of 0.73, label F1 0.67 instead of 0.78). Train the "
            "reference with `MODTT(..., protein_dropout=0.5)` before mapping RNA-only data "
            "onto it.",
            UserWarning,
            stacklevel=settings.warnings_stacklevel,
        )


def _as_reference(reference_model):
    """scvi-tools reads a saved reference only from a ``str`` folder: accept any path."""
    return (
        os.fspath(reference_model) if isinstance(reference_model, os.PathLike) else reference_model
    )


def _check_reference_class(registry: dict, cls) -> None:
    saved_by = registry.get(_MODEL_NAME_KEY)
    if saved_by is not None and saved_by != cls.__name__:
        raise ValueError(
            f"The reference model was saved by {saved_by}, not {cls.__name__}: map the query with "
            f"`{saved_by}.load_query_data`, or train a {cls.__name__} reference first."
        )


def _raise_unless_reference_features(
    query: pd.Index, reference: pd.Index, mod_name: str, what: str
) -> None:
    if query.equals(reference):
        return
    missing, extra = missing_and_extra(reference, query)
    raise ValueError(
        f"The query's {what} in modality {mod_name!r} are not the reference's: {len(missing)} of "
        f"{len(reference)} reference {what} are missing (e.g. {list(missing[:5])}), "
        f"{len(extra)} are not in the reference (e.g. {list(extra[:5])})"
        + (", and the order differs" if not (len(missing) or len(extra)) else "")
        + ". Run `query = MODTT.prepare_query_mudata(query, reference)`: it orders the features "
        "as the reference's, pads missing ones with zeros (missing ADTs are then imputed) and "
        "drops the others."
    )


def _conformed(
    adata: AnnData,
    mod_name: str,
    layer: str | None,
    reference: pd.Index,
    what: str,
    obs_names: pd.Index | None = None,
) -> AnnData:
    """Counts of ``adata`` on the reference's features (and cells), zeros where it has none."""
    if not adata.var_names.is_unique:
        raise ValueError(
            f"Modality {mod_name!r} has duplicated feature names; make them unique first "
            f"(`mdata[{mod_name!r}].var_names_make_unique()`)."
        )
    counts = sparse.csr_matrix(get_matrix(adata, mod_name, layer))
    columns = adata.var_names.get_indexer(reference)
    present = columns >= 0
    n_found = int(present.sum())
    if n_found == 0:
        raise ValueError(
            f"None of the reference's {len(reference)} {what} is in the query's modality "
            f"{mod_name!r} (query {what}, e.g. {list(adata.var_names[:5])}; reference, e.g. "
            f"{list(reference[:5])}). Check that both use the same naming (symbols vs IDs)."
        )
    extra = adata.var_names.difference(reference)
    logger.info(
        "Modality %r: %d of %d reference %s found; %d padded with zeros; %d not in the "
        "reference left out%s.",
        mod_name,
        n_found,
        len(reference),
        what,
        len(reference) - n_found,
        len(extra),
        f" (e.g. {list(extra[:10])})" if len(extra) else "",
    )
    if n_found / len(reference) < MIN_VAR_NAME_RATIO:
        warnings.warn(
            f"The query's modality {mod_name!r} has only {n_found} of the reference's "
            f"{len(reference)} {what}; mapping from so few may place cells poorly.",
            UserWarning,
            stacklevel=settings.warnings_stacklevel,
        )
    # Select the present columns, then zero the padded ones: one sparse product, no dense copy.
    selected = sparse.csr_matrix(
        counts[:, np.where(present, columns, 0)].multiply(present[None, :].astype(counts.dtype))
    )
    if obs_names is not None:
        rows = adata.obs_names.get_indexer(obs_names)
        if (rows < 0).any():
            logger.info(
                "%d query cells have no %s in %r: treated as unmeasured.",
                int((rows < 0).sum()),
                what,
                mod_name,
            )
        selected = sparse.csr_matrix(
            selected[np.maximum(rows, 0)].multiply((rows >= 0)[:, None].astype(counts.dtype))
        )
    else:
        obs_names = adata.obs_names
    selected.eliminate_zeros()
    return _modality(selected, obs_names, reference, layer)


def _zeros_like_modality(obs_names: pd.Index, var_names: pd.Index, layer: str | None) -> AnnData:
    zeros = sparse.csr_matrix((len(obs_names), len(var_names)), dtype=np.float32)
    return _modality(zeros, obs_names, var_names, layer)


def _modality(counts, obs_names: pd.Index, var_names: pd.Index, layer: str | None) -> AnnData:
    adata = AnnData(
        X=counts, obs=pd.DataFrame(index=obs_names.copy()), var=pd.DataFrame(index=var_names)
    )
    if layer is not None:
        adata.layers[layer] = counts.copy()
    return adata


def _obs_of(mdata: MuData, mod_name: str | None) -> pd.DataFrame:
    return mdata.obs if mod_name is None else mdata[mod_name].obs


def _fill_query_labels(query: MuData, setup_args: dict, registry: dict) -> None:
    labels_key = setup_args.get("labels_key")
    if labels_key is None:
        return
    obs = _obs_of(query, setup_args["modalities"].get("labels_key"))
    if labels_key not in obs:
        obs[labels_key] = UNKNOWN_LABEL
        logger.info(
            "The query has no %r column: its cells are labelled %r.", labels_key, UNKNOWN_LABEL
        )
        return
    labels = obs[labels_key].astype(object)
    n_missing = int(labels.isna().sum())
    if n_missing:
        logger.info("%d query cells without a label are labelled %r.", n_missing, UNKNOWN_LABEL)
    obs[labels_key] = labels.where(labels.notna(), UNKNOWN_LABEL).astype(str).to_numpy()
    known = set(map(str, _mapping(registry, REGISTRY_KEYS.LABELS_KEY)))
    unknown = sorted(set(obs[labels_key]) - known)
    if unknown:
        logger.info(
            "Query labels the reference does not know (kept, treated as unknown): %s.", unknown
        )


def _mapping(registry: dict, registry_key: str) -> np.ndarray:
    state = registry["field_registries"][registry_key]["state_registry"]
    return np.asarray(state["categorical_mapping"])


def _expand_reference(reference: dict, query: dict) -> dict[str, torch.Tensor]:
    """The reference's state dict grown to the query model's batches and labels.

    New flow-prior batch and label tokens copy the "none" token, so the flow never conditions on
    an unknown label; any other per-label table grows by the mean of the reference's rows (those
    rows are not used for unknown labels). New batches are set by :func:`_start_new_batches`.
    """
    state = {}
    for key, new in query.items():
        if key not in reference or key.split(".")[-1] in _QUERY_OWN_STATE:
            state[key] = new  # the query's own: adapters, feature masks, label flags
            continue
        old = reference[key].to(new.device)
        if old.shape == new.shape:
            state[key] = old
        elif key in _FLOW_TOKENS:
            none = old[-1:]
            state[key] = torch.cat([old[:-1], none.expand(new.shape[0] - old.shape[0], -1), none])
        elif key in _BATCH_COLUMNS:  # set by `_start_new_batches`
            state[key] = torch.cat([old, new[:, old.shape[1] :]], 1)
        else:
            grown = old
            for dim, (n_old, n_new) in enumerate(zip(old.shape, new.shape, strict=True)):
                if n_old != n_new:
                    fill = (
                        torch.zeros_like(grown.narrow(dim, 0, 1))
                        if grown.dtype == torch.bool
                        else grown.float().mean(dim, keepdim=True).to(grown.dtype)
                    )
                    repeats = [1] * grown.ndim
                    repeats[dim] = n_new - n_old
                    grown = torch.cat([grown, fill.repeat(repeats)], dim)
            state[key] = grown
    return state


def _batch_weight(module: torch.nn.Module) -> torch.nn.Parameter:
    """The decoder's first weight: latent columns, then one column per batch."""
    layer = module.decoder_input if module.architecture == "modular" else module.decoder_body[0]
    return layer.weight


@torch.no_grad()
def _start_new_batches(module: torch.nn.Module) -> None:
    """Start batches without reference cells as an "average" reference batch.

    Their decoder columns take the mean of the trained batches' columns, and their flow-prior
    tokens the "no batch" token, so the flow draws their cell states batch-agnostically. A batch
    category with no reference cells (e.g. an unused category of the reference's batch column)
    counts as new.
    """
    new = ~module.trained_batches
    if not bool(new.any()):
        return
    columns = _batch_weight(module)[:, module.n_latent :]
    columns[:, new] = columns[:, ~new].mean(1, keepdim=True)
    tokens = module.flow_prior.velocity.batch.weight
    tokens[:-1][new] = tokens[-1]


def _freeze_reference(module: torch.nn.Module) -> None:
    """Freeze everything but the new batches' decoder weights and the token adapter."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    if module.token_adapter is not None:
        module.token_adapter.requires_grad_(True)
    weight = _batch_weight(module)
    new = ~module.trained_batches
    if bool(new.any()):
        mask = torch.zeros_like(weight)
        mask[:, module.n_latent :][:, new] = 1.0
        weight.requires_grad_(True)
        # A gradient mask, as scvi-tools' scArches hooks do: the reference batches' columns get
        # zero gradients and, with Adam and no weight decay, never move.
        weight._query_gradient_mask = mask
        weight.register_hook(lambda grad: grad * mask)
