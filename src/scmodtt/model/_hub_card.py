"""The scvi-hub model card of a MODTT: what it was trained on, its modules and its metrics."""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import pandas as pd
from huggingface_hub import ModelCard, ModelCardData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.hub import HubModelCardHelper
from scvi.hub._constants import _SCVI_HUB

from ..pp._membership import residual_name

#: Labels or batches listed by name in the card; the rest are summed up in one line.
MAX_LISTED_CATEGORIES = 30

_PRETEXT = """\
MODTT (Python package `scmodtt`, an extension of scvi-tools) is a
conditional generative model of paired single-cell RNA and surface-protein (ADT) counts
(CITE-seq, REAP-seq, AbSeq). Genes and proteins are grouped into modules; each module has its own
encoder and decoder, and the module embeddings are coupled by a dense or a Tensor-Train layer
before a shared latent space. With cell-type labels, MODTT learns a prior per type and a
conditional flow over the latent code and library sizes, so that it generates cells of a chosen
type (`model.sample`). It also gives latent representations, denoised RNA and protein expression,
and posterior predictive counts, and maps new data onto a trained reference."""

_TEMPLATE = """\
---
{card_data}
---

# MODTT model

{pretext}

# Model description

{description}

# How to load this model

Install scmodtt (`pip install scmodtt`, which brings scvi-tools), then:

```python
from scvi.hub import HubModel

hub_model = HubModel.pull_from_huggingface_hub("<owner>/<repository>", revision="main")
model = hub_model.model  # a scmodtt.MODTT, on the training data saved with it
```

From a local copy of this folder: `scmodtt.model.read_hub_model("folder").model`, which also
checks the metadata. {data_note}

# Training data

| | |
|---|---|
{training_data}

# Modules and architecture

| | |
|---|---|
{modules}

Trainable parameters:

| part | parameters |
|---|---|
{parameters}

# Metrics

{metrics}

# Model properties

<details>
<summary><strong>Model parameters</strong></summary>

Arguments of `scmodtt.MODTT(...)` (module tables summarised):
```json
{model_init_params}
```

</details>

<details>
<summary><strong>Setup arguments</strong></summary>

Arguments of `scmodtt.MODTT.setup_mudata(...)`:
```json
{model_setup_anndata_args}
```

</details>

<details>
<summary><strong>Data registry</strong></summary>

{model_data_registry}

</details>

<details>
<summary><strong>Summary statistics</strong></summary>

{model_summary_stats}

</details>

# Training

**Training data url**: {training_data_url}

**Training code url**: {training_code_url}

# References

{references}
"""


@dataclass
class MODTTModelCardHelper(HubModelCardHelper):
    """scvi-tools' model card helper for :class:`~scmodtt.MODTT` (scvi-tools knows only its own
    models' cards).

    Beyond scvi-tools' fields it holds ``training_data`` (rows of the training data table),
    ``modules`` (rows of the architecture table), ``parameters`` (trainable parameters per part)
    and ``scmodtt_version``; ``metrics_report`` is a mapping of metric names to values (or of
    groups to such mappings). Built by :func:`model_card_helper`.
    """

    training_data: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    scmodtt_version: str | None = None
    data_included: bool = True

    def _to_model_card(self) -> ModelCard:
        tags = [
            "biology",
            "genomics",
            "single-cell",
            "CITE-seq",
            _SCVI_HUB.MODEL_CLS_NAME_TAG.format(self.model_cls_name),
            _SCVI_HUB.SCVI_VERSION_TAG.format(self.scvi_version),
            _SCVI_HUB.ANNDATA_VERSION_TAG.format(self.anndata_version),
        ]
        if self.scmodtt_version is not None:
            tags.append(f"scmodtt_version:{self.scmodtt_version}")
        tags += [_SCVI_HUB.MODALITY_TAG.format(m) for m in self.data_modalities]
        tags += [_SCVI_HUB.TISSUE_TAG.format(t) for t in self.tissues]
        if self.data_is_annotated is not None:
            tags.append(_SCVI_HUB.ANNOTATED_TAG.format(self.data_is_annotated))
        card_data = ModelCardData(
            license=self.license_info, library_name=_SCVI_HUB.HF_LIBRARY_NAME, tags=tags
        )
        data_note = (
            "The training data is saved with the model (`mdata.h5mu`)."
            if self.data_included
            else "The training data is not saved with the model: pass it with "
            "`read_hub_model(folder, adata=mdata)` or `hub_model.load_model(adata=mdata)`."
        )
        content = _TEMPLATE.format(
            card_data=card_data.to_yaml(),
            pretext=_PRETEXT,
            description=self.description,
            data_note=data_note,
            training_data=_rows(self.training_data),
            modules=_rows(self.modules),
            parameters=_rows({part: f"{n:,}" for part, n in self.parameters.items()}),
            metrics=_metrics_markdown(self.metrics_report),
            model_init_params=json.dumps(
                _card_init_params(self.model_init_params), indent=4, default=str
            ),
            model_setup_anndata_args=json.dumps(
                self.model_setup_anndata_args, indent=4, default=str
            ),
            model_data_registry=AnnDataManager._view_data_registry(
                self.model_data_registry, as_markdown=True
            ),
            model_summary_stats=AnnDataManager._view_summary_stats(
                self.model_summary_stats, as_markdown=True
            ),
            training_data_url=self.training_data_url or _SCVI_HUB.DEFAULT_NA_FIELD,
            training_code_url=self.training_code_url or _SCVI_HUB.DEFAULT_NA_FIELD,
            references=self.references,
        )
        return ModelCard(content)


def model_card_helper(
    model,
    license_info: str,
    *,
    description: str | None = None,
    metrics: Mapping | pd.DataFrame | None = None,
    training_data_url: str | None = None,
    training_code_url: str | None = None,
    tissues: list[str] | None = None,
    references: str | None = None,
    data_included: bool = True,
) -> MODTTModelCardHelper:
    """The model card of a trained MODTT, from the model itself (its registry and modules)."""
    registry = model.adata_manager.registry
    rna_mod, protein_mod = model._modality_names()
    return MODTTModelCardHelper(
        license_info=license_info,
        model_cls_name=type(model).__name__,
        model_init_params=model.init_params_,
        model_setup_anndata_args=registry["setup_args"],
        model_summary_stats=dict(AnnDataManager._get_summary_stats_from_registry(registry)),
        model_data_registry=dict(AnnDataManager._get_data_registry_from_registry(registry)),
        scvi_version=registry["scvi_version"],
        anndata_version=version("anndata"),
        data_modalities=["rna", "protein"],
        tissues=list(tissues or []),
        data_is_annotated=model._labels_key() is not None,
        data_is_minified=False,
        training_data_url=training_data_url,
        training_code_url=training_code_url,
        model_parent_module=hub_parent_module(type(model)),
        description=description or _SCVI_HUB.DEFAULT_MISSING_FIELD,
        references=references
        or "Kolbeinsson & Kolbeinsson, *Tensorised Modular Architectures "
        "for Multi-Omics Generation*, ICLR 2026 Gen² workshop.",
        metrics_report=metrics_dict(metrics),
        training_data=_training_data_rows(model, rna_mod, protein_mod),
        modules=_module_rows(model, rna_mod, protein_mod),
        parameters=_parameter_rows(model),
        scmodtt_version=version("scmodtt"),
        data_included=data_included,
    )


def hub_parent_module(model_cls: type) -> str:
    """The module scvi-hub imports the model class from: ``scmodtt`` for scmodtt's own."""
    import scmodtt

    if getattr(scmodtt, model_cls.__name__, None) is model_cls:
        return "scmodtt"
    return model_cls.__module__


def metrics_dict(metrics: Mapping | pd.DataFrame | pd.Series | None) -> dict | None:
    """Metrics as plain JSON values: ``{name: value}`` or ``{group: {name: value}}``."""
    if metrics is None:
        return None
    if isinstance(metrics, pd.DataFrame):
        metrics = {str(column): metrics[column].to_dict() for column in metrics.columns}
    elif isinstance(metrics, pd.Series):
        metrics = metrics.to_dict()
    if not isinstance(metrics, Mapping):
        raise TypeError(
            "`metrics` must be a mapping of metric names to values (or of groups, e.g. models, "
            f"to such mappings) or a pandas DataFrame, got {type(metrics).__name__}."
        )
    return {str(key): _json_value(value, str(key)) for key, value in metrics.items()}


def _json_value(value, name: str):
    if isinstance(value, Mapping):
        return {str(key): _json_value(item, f"{name}.{key}") for key, item in value.items()}
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(
        f"Metric {name!r} is a {type(value).__name__}; metrics must be numbers or strings "
        "(summarise arrays, e.g. with their mean, before putting them on the model card)."
    )


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _metrics_markdown(metrics: dict | None) -> str:
    if not metrics:
        return _SCVI_HUB.DEFAULT_NA_FIELD
    if all(isinstance(value, Mapping) for value in metrics.values()):
        table = pd.DataFrame(metrics)  # metrics as rows, groups (e.g. models) as columns
        header = "| metric | " + " | ".join(map(str, table.columns)) + " |"
        lines = [header, "|---" * (len(table.columns) + 1) + "|"]
        for metric, row in table.iterrows():
            cells = ["" if pd.isna(value) else _format_value(value) for value in row]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    lines = ["| metric | value |", "|---|---|"]
    for metric, value in metrics.items():
        shown = json.dumps(value) if isinstance(value, Mapping) else _format_value(value)
        lines.append(f"| {metric} | {shown} |")
    return "\n".join(lines)


def _rows(table: Mapping) -> str:
    return "\n".join(f"| {key} | {value} |" for key, value in table.items())


def _category_counts(codes: np.ndarray, categories: np.ndarray) -> str:
    counts = np.bincount(codes, minlength=len(categories))
    listed = [f"{category} ({count:,})" for category, count in zip(categories, counts, strict=True)]
    if len(listed) > MAX_LISTED_CATEGORIES:
        rest = len(listed) - MAX_LISTED_CATEGORIES
        listed = [*listed[:MAX_LISTED_CATEGORIES], f"… and {rest} more"]
    return ", ".join(listed)


def _training_data_rows(model, rna_mod: str, protein_mod: str) -> dict[str, str]:
    stats = model.summary_stats
    setup_args = model.adata_manager.registry["setup_args"]

    def layer(name):
        return f"layer `{name}`" if name else "`.X`"

    rows = {
        "cells": f"{stats.n_cells:,}",
        "genes": f"{stats.n_vars:,} (modality `{rna_mod}`, {layer(setup_args['rna_layer'])})",
        "ADTs (proteins)": (
            f"{stats.n_proteins:,} (modality `{protein_mod}`, {layer(setup_args['protein_layer'])})"
        ),
    }
    labels_key, batch_key = model._labels_key(), model._batch_key()
    label_codes = model._label_codes()
    if labels_key is None:
        rows["labels"] = "none (prior N(0, I); `sample` draws unconditionally)"
    else:
        categories = model._category_mapping(REGISTRY_KEYS.LABELS_KEY)
        rows["labels"] = (
            f"{len(categories)} in `{labels_key}`: {_category_counts(label_codes, categories)}"
        )
    batch_codes = (
        np.asarray(model.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
        .ravel()
        .astype(np.int64)
    )
    batches = model._category_mapping(REGISTRY_KEYS.BATCH_KEY)
    rows["batches"] = (
        "one (no `batch_key`)"
        if batch_key is None
        else f"{len(batches)} in `{batch_key}`: {_category_counts(batch_codes, batches)}"
    )
    if model.train_indices is not None:
        n_validation = len(model.validation_indices) if model.validation_indices is not None else 0
        rows["training / validation cells"] = f"{len(model.train_indices):,} / {n_validation:,}"
    history = model.history
    if history is not None and "elbo_train" in history:
        rows["epochs trained"] = str(len(history["elbo_train"]))
    return rows


def _module_sizes(membership: pd.DataFrame) -> str:
    sizes = membership.to_numpy().sum(axis=0)
    if sizes.min() == sizes.max():
        return f"{int(sizes.min())} features each"
    return f"{int(sizes.min())}–{int(sizes.max())} features (median {np.median(sizes):g})"


def _module_rows(model, rna_mod: str, protein_mod: str) -> dict[str, str]:
    params = model.init_params_["non_kwargs"]
    membership = model.module_membership_
    rows = {"architecture": params["architecture"]}
    if params["architecture"] == "modular":
        for role, mod_name in (("rna", rna_mod), ("protein", protein_mod)):
            table = membership[role]
            residual = residual_name(mod_name) in table.columns
            rows[f"{'RNA' if role == 'rna' else 'protein'} modules"] = (
                f"{table.shape[1]}"
                + (f" (incl. residual module `{residual_name(mod_name)}`)" if residual else "")
                + f", {_module_sizes(table)}"
            )
        coupling = params["coupling"]
        rows["coupling"] = f"{coupling} ({'block Tensor-Train' if coupling == 'tt' else 'dense'})"
        rows["tt_rank"] = str(params["tt_rank"]) if coupling == "tt" else "(not used)"
        rows["module_dim"] = str(params["module_dim"])
    else:
        rows["n_hidden"] = str(params["n_hidden"])
    rows["n_latent"] = str(params["n_latent"])
    rows["likelihoods"] = (
        f"RNA `{params['gene_likelihood']}`, protein `{params['protein_likelihood']}`, "
        f"dispersion `{params['dispersion']}`"
    )
    rows["flow prior"] = (
        f"fitted ({params['flow_n_layers']} residual blocks of {params['flow_n_hidden']} units)"
        if model.is_flow_prior_fitted
        else "not fitted (`sample` uses the Gaussian label prior)"
    )
    if params.get("adapter_rank"):
        rows["token adapter rank (query model)"] = str(params["adapter_rank"])
    return rows


def _parameter_rows(model) -> dict[str, int]:
    counts = {part: int(n) for part, n in model.parameter_counts().items()}
    total = counts.pop("total")
    counts["total (autoencoder)"] = total
    counts["flow prior (fitted after the autoencoder)"] = sum(
        p.numel() for p in model.module.flow_prior.parameters()
    )
    return counts


def _card_init_params(init_params: dict) -> dict:
    """Model parameters for the card; the module tables become their shapes."""
    flat = {**init_params.get("non_kwargs", {}), **init_params.get("kwargs", {})}
    membership = flat.pop("module_membership", None)
    if isinstance(membership, Mapping):
        flat["module_membership"] = {
            role: f"{table.shape[1]} modules over {table.shape[0]} features"
            for role, table in membership.items()
        }
    return flat
