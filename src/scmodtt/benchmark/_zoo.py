"""The models compared by the benchmark: one :class:`ModelSpec` per model, the single list.

Every trained model's builder takes the training MuData (raw counts in ``.X`` of ``rna`` and
``prot``; modules in ``.varm`` for MODTT), registers it the way that model expects, and returns the
model untrained; its trainer trains it on given training and validation cells. The run loop
(:func:`scmodtt.benchmark.run`), the report's model order, the command line's model list and
:data:`scmodtt.benchmark.DEFAULT_MODELS` all read :data:`MODELS`, so a model is added here only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import scipy.sparse as sp
import scvi
from mudata import MuData

from ..model import MODTT

RNA_MOD, PROTEIN_MOD = "rna", "prot"
#: Dense copy of the protein counts: totalVI's empirical protein prior fails on sparse input.
DENSE_PROTEIN_LAYER = "counts_dense"
#: Module tables a MODTT model with modules can be run with (``"modtt-tt:random"``…); Ward first.
MODULE_METHODS = ("ward", "random", "hallmark")
#: Settings of :func:`scmodtt.benchmark.run` that MODTT's builder takes.
MODTT_SETTINGS = ("gene_likelihood", "protein_likelihood")


# ---------------------------------------------------------------------- builders
def _modtt(mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs) -> MODTT:
    MODTT.setup_mudata(
        mdata,
        labels_key=labels_key,
        batch_key=batch_key,
        modalities={"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD},
    )
    return MODTT(mdata, **kwargs)


def _totalvi(
    mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs
) -> scvi.model.TOTALVI:
    protein = mdata[PROTEIN_MOD]
    protein.layers[DENSE_PROTEIN_LAYER] = (
        protein.X.toarray() if sp.issparse(protein.X) else np.asarray(protein.X)
    )
    scvi.model.TOTALVI.setup_mudata(
        mdata,
        protein_layer=DENSE_PROTEIN_LAYER,
        batch_key=batch_key,
        modalities={"rna_layer": RNA_MOD, "protein_layer": PROTEIN_MOD},
    )
    return scvi.model.TOTALVI(mdata, **kwargs)


def concatenated_counts(mdata: MuData) -> ad.AnnData:
    """RNA and protein counts side by side in one AnnData (scVI's view of CITE-seq data)."""
    rna, protein = mdata[RNA_MOD], mdata[PROTEIN_MOD]
    var_names = [
        *(f"rna:{name}" for name in rna.var_names),
        *(f"prot:{name}" for name in protein.var_names),
    ]
    X = sp.hstack([sp.csr_matrix(rna.X), sp.csr_matrix(protein.X)]).tocsr()
    adata = ad.AnnData(X=X, obs=mdata.obs.copy())
    adata.var_names = var_names
    adata.var["modality"] = [RNA_MOD] * rna.n_vars + [PROTEIN_MOD] * protein.n_vars
    return adata


def _scvi(
    mdata: MuData, labels_key: str | None, batch_key: str | None, **kwargs
) -> scvi.model.SCVI:
    adata = concatenated_counts(mdata)
    scvi.model.SCVI.setup_anndata(adata, batch_key=batch_key, labels_key=labels_key)
    return scvi.model.SCVI(adata, **kwargs)


# ---------------------------------------------------------------------- trainers
# Each takes the model, the [train, validation, test] positions among the cells it was set up
# with, the epochs of a flow prior fitted after training (MODTT's; None: its default) and the
# common trainer arguments; they differ in where scvi-tools 1.4.2 reads the positions and
# whether early stopping is on by default.
def _train_modtt(model, indexing: list[np.ndarray], flow_max_epochs: int | None, **common):
    model.train(
        **common,
        datasplitter_kwargs={"external_indexing": indexing},
        flow_kwargs={"max_epochs": flow_max_epochs},
    )


def _train_scvi(model, indexing: list[np.ndarray], flow_max_epochs: int | None, **common):
    model.train(**common, datasplitter_kwargs={"external_indexing": indexing}, early_stopping=True)


def _train_totalvi(model, indexing: list[np.ndarray], flow_max_epochs: int | None, **common):
    model.train(**common, external_indexing=indexing)  # early stopping is its default


# ---------------------------------------------------------------------- the models
@dataclass(frozen=True)
class ModelSpec:
    """Everything the benchmark knows about one model.

    Attributes
    ----------
    name
        Benchmark name (``"modtt-tt"``…), as in ``results.csv``.
    family
        ``"modtt"``, ``"scvi"``, ``"totalvi"`` (how its latent space is decoded) or
        ``"baseline"`` (training-free).
    description
        One line for the command line's help and the docs.
    protocols
        Generation protocols it is scored under (names in
        :data:`scmodtt.benchmark.PROTOCOLS`), in report order.
    build
        ``build(mdata, labels_key, batch_key, **kwargs)`` → untrained model; ``None`` for a
        training-free model.
    train
        ``train(model, [train, validation, test] positions, flow_max_epochs,
        **trainer_kwargs)``; ``flow_max_epochs`` is for a model that fits a flow prior after
        training (MODTT) and ignored by the others.
    kwargs
        Constructor arguments of this variant (e.g. MODTT's architecture and coupling).
    settings
        Benchmark settings passed on to ``build`` (MODTT's likelihoods).
    budget_variant
        :class:`~scmodtt.benchmark.BudgetSolver` variant sizing it to parameter budgets
        (``"tt"``, ``"dense"``, ``"flat"``); ``None``: run at its default size only.
    uses_modules
        Reads module tables from ``.varm`` (every MODTT architecture).
    module_methods
        Can be run with other module tables (``"modtt-tt:random"``, ``":hallmark"``).

    """

    name: str
    family: str
    description: str
    protocols: tuple[str, ...]
    build: Callable | None = None
    train: Callable | None = None
    kwargs: dict = field(default_factory=dict)
    settings: tuple[str, ...] = ()
    budget_variant: str | None = None
    uses_modules: bool = False
    module_methods: bool = False

    @property
    def trained(self) -> bool:
        """Whether the model is trained (else it is a training-free generator)."""
        return self.build is not None

    @property
    def sized(self) -> bool:
        """Whether the model is sized to the run's parameter budgets."""
        return self.budget_variant is not None


_LATENT_PROTOCOLS = ("latent_gaussian", "latent_flow")


def _modtt_spec(name: str, description: str, coupling: str | None = None) -> ModelSpec:
    """A MODTT architecture: modular with ``coupling`` (it then takes other module tables too)
    or flat without; sized by the budget solver's variant of the same name.
    """
    kwargs = (
        {"architecture": "modular", "coupling": coupling} if coupling else {"architecture": "flat"}
    )
    return ModelSpec(
        name,
        "modtt",
        description,
        ("native", *_LATENT_PROTOCOLS),
        build=_modtt,
        train=_train_modtt,
        kwargs=kwargs,
        settings=MODTT_SETTINGS,
        budget_variant=coupling or "flat",
        uses_modules=True,
        module_methods=coupling is not None,
    )


#: Every benchmarked model by name, in the order of the report (ablations follow their model).
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _modtt_spec("modtt-tt", "MODTT, modules coupled by a tensor train", "tt"),
        _modtt_spec("modtt-dense", "MODTT, modules coupled densely", "dense"),
        _modtt_spec("flat", "MODTT's likelihoods and priors with a flat MLP encoder and decoder"),
        ModelSpec(
            "scvi",
            "scvi",
            "scVI on RNA and ADT counts side by side",
            _LATENT_PROTOCOLS,
            build=_scvi,
            train=_train_scvi,
        ),
        ModelSpec(
            "totalvi",
            "totalvi",
            "totalVI",
            _LATENT_PROTOCOLS,
            build=_totalvi,
            train=_train_totalvi,
        ),
        ModelSpec(
            "linear",
            "baseline",
            "PCA and a Gaussian per label, no training, after Souza & Mehta 2026",
            ("linear",),
        ),
        ModelSpec(
            "oracle", "baseline", "a bootstrap of real training cells per label", ("oracle",)
        ),
    )
}


def trained_models() -> list[str]:
    """Names of the models that are trained (those :func:`build_model` builds)."""
    return [name for name, spec in MODELS.items() if spec.trained]


def sized_models() -> list[str]:
    """Names of the models sized to parameter budgets."""
    return [name for name, spec in MODELS.items() if spec.sized]


def module_method_models() -> list[str]:
    """Names of the models that can be run with other module tables (``:random``…)."""
    return [name for name, spec in MODELS.items() if spec.module_methods]


def models_help(names: Sequence[str] | None = None) -> str:
    """``name (description; protocols …); …`` for the command line's help."""
    return "; ".join(
        f"{name} ({MODELS[name].description}; protocols {', '.join(MODELS[name].protocols)})"
        for name in names or MODELS
    )


def build_model(
    name: str, mdata: MuData, labels_key: str | None = None, batch_key: str | None = None, **kwargs
):
    """Build the trained benchmark model ``name`` on ``mdata`` (registering it), untrained."""
    spec = MODELS.get(name)
    if spec is None or not spec.trained:
        raise ValueError(
            f"Unknown trained model {name!r}; the benchmark trains {trained_models()}."
        )
    return spec.build(mdata, labels_key, batch_key, **{**spec.kwargs, **kwargs})


def n_parameters(model) -> int:
    """Trainable parameters of a scvi-tools model."""
    return int(sum(p.numel() for p in model.module.parameters() if p.requires_grad))
