"""Sharing a MODTT through scvi-hub: a model folder that :class:`scvi.hub.HubModel` loads back."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from mudata import MuData
from scvi.hub import HubMetadata, HubModel
from scvi.hub._constants import _SCVI_HUB

from ._hub_card import hub_parent_module, metrics_dict, model_card_helper

#: File names of a model folder (scvi-tools' own).
METADATA_FILE = _SCVI_HUB.METADATA_FILE_NAME
MODEL_CARD_FILE = _SCVI_HUB.MODEL_CARD_FILE_NAME
METRICS_FILE = "metrics.json"
_DATA_FILES = ("mdata.h5mu", "adata.h5ad")

#: Fields of the metadata file that loading a MODTT needs. scvi-tools' ``HubMetadata`` has a
#: default for ``model_parent_module`` (``scvi.model``), but a MODTT is not found there.
REQUIRED_METADATA_FIELDS = (
    "scvi_version",
    "anndata_version",
    "model_cls_name",
    "model_parent_module",
)


def to_hub_model(
    model,
    local_dir: str | os.PathLike,
    *,
    license_info: str = "cc-by-4.0",
    description: str | None = None,
    metrics: Mapping | pd.DataFrame | None = None,
    training_data_url: str | None = None,
    training_code_url: str | None = None,
    tissues: list[str] | None = None,
    references: str | None = None,
    save_data: bool = True,
    overwrite: bool = False,
) -> HubModel:
    """Save a trained MODTT as an scvi-hub model folder and return its :class:`scvi.hub.HubModel`.

    The folder holds what scvi-hub expects: the model (``model.pt``, with the label prior, the
    fitted flow prior and the module tables), the training MuData (``mdata.h5mu``, unless
    ``save_data=False``), the required metadata (``_scvi_required_metadata.json``: scvi-tools and
    anndata versions, ``model_cls_name="MODTT"`` and ``model_parent_module="scmodtt"``, from where
    :class:`~scvi.hub.HubModel` imports the class), the metrics (``metrics.json``) and a model
    card (``README.md``) that describes the training data (cells, genes, ADTs, labels, batches),
    the modules and architecture (module counts and sizes, coupling, ``tt_rank``, ``module_dim``,
    ``n_latent``, parameter counts) and the metrics. ``HubModel(local_dir).model`` (or
    :func:`read_hub_model`) loads the model back: same latent representation, same
    ``sample(..., seed=...)`` cells. Push it with
    :meth:`~scvi.hub.HubModel.push_to_huggingface_hub`.

    Parameters
    ----------
    model
        A trained :class:`~scmodtt.MODTT`.
    local_dir
        Folder to create (see ``overwrite``).
    license_info
        Licence of the model (a Hugging Face licence identifier).
    description
        Free text for the card's description: what the model is for, how it was trained.
    metrics
        Metrics to report: ``{name: value}``, ``{group: {name: value}}`` (e.g. one mapping per
        model or cell type) or a DataFrame with one column per group; numbers or strings. Saved
        in ``metrics.json`` and shown as a table on the card.
    training_data_url
        Where to download the training data (e.g. when ``save_data=False`` because it is too large
        for the hub); stored in the metadata and the card. scvi-tools checks its format.
    training_code_url
        Link to the code that trained the model.
    tissues
        Tissues of the training data (card tags).
    references
        References for the card (default: the reference paper of MODTT's architecture).
    save_data
        Save the training MuData with the model. Without it, loading needs the data
        (``read_hub_model(local_dir, adata=mdata)``).
    overwrite
        Replace the files of an existing folder.

    Returns
    -------
    The :class:`scvi.hub.HubModel` of the folder; its model is loaded from disk on first access.

    Examples
    --------
    >>> hub_model = scmodtt.model.to_hub_model(
    ...     model,
    ...     "modtt_reapseq",
    ...     description="MODTT-tt on REAP-seq PBMCs, 12 cell types.",
    ...     metrics={"tstr_f1": 0.79, "cond_r": 0.08},
    ... )
    >>> print(hub_model.model_card.content)
    >>> hub_model.push_to_huggingface_hub("me/modtt-reapseq", repo_create=True)
    >>> # elsewhere:
    >>> from scvi.hub import HubModel
    >>> model = HubModel.pull_from_huggingface_hub("me/modtt-reapseq", revision="main").model

    """
    from ._modtt import MODTT

    if not isinstance(model, MODTT):
        raise TypeError(f"`model` must be a scmodtt.MODTT, got {type(model).__name__}.")
    if not model.is_trained:
        raise ValueError(
            "The model is not trained: train it (`model.train()`) before sharing it on scvi-hub."
        )
    if not isinstance(license_info, str) or not license_info:
        raise ValueError(
            "`license_info` must name a licence, e.g. 'cc-by-4.0' or 'mit' (a Hugging Face "
            f"licence identifier), got {license_info!r}."
        )
    metrics = metrics_dict(metrics)
    # Metadata and card first: an invalid URL or metric fails before anything is written.
    metadata = HubMetadata(
        scvi_version=model.adata_manager.registry["scvi_version"],
        anndata_version=version("anndata"),
        model_cls_name=type(model).__name__,
        training_data_url=training_data_url,
        model_parent_module=hub_parent_module(type(model)),
    )
    card = model_card_helper(
        model,
        license_info,
        description=description,
        metrics=metrics,
        training_data_url=training_data_url,
        training_code_url=training_code_url,
        tissues=tissues,
        references=references,
        data_included=save_data,
    )
    local_dir = Path(local_dir)
    model.save(os.fspath(local_dir), overwrite=overwrite, save_anndata=save_data)
    stale = [METRICS_FILE] if metrics is None else []
    if not save_data:  # a data file from an earlier save would be loaded instead of the user's
        stale += list(_DATA_FILES)
    for name in stale:
        (local_dir / name).unlink(missing_ok=True)
    if metrics is not None:
        (local_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=4), encoding="utf-8")
    hub_model = HubModel(os.fspath(local_dir), metadata=metadata, model_card=card)
    hub_model.save(overwrite=True)  # `model.save` has already refused an existing folder
    return hub_model


def read_hub_model(
    local_dir: str | os.PathLike,
    adata: MuData | None = None,
    *,
    accelerator: str = "auto",
    device: str | int = "auto",
) -> HubModel:
    """Open an scvi-hub folder of a MODTT after checking its metadata.

    :class:`scvi.hub.HubModel` reads the same folder; this first checks the metadata file, so that
    a missing or wrong field is reported with its fix instead of failing inside scvi-tools (a
    missing ``model_parent_module``, for example, makes scvi-hub look for the class in
    ``scvi.model``). A folder downloaded from the Hugging Face Hub
    (``huggingface_hub.snapshot_download(repo)``) is read the same way.

    Parameters
    ----------
    local_dir
        Folder written by :func:`to_hub_model` (or downloaded from the hub).
    adata
        Data to load the model on, registered like the training data; needed when the folder has
        no saved data. The model is then loaded at once; otherwise on first access of
        ``.model``.
    accelerator, device
        Where to load the model (see :meth:`scvi.hub.HubModel.load_model`).

    Returns
    -------
    The :class:`scvi.hub.HubModel`; ``.model`` is the :class:`~scmodtt.MODTT`.

    Examples
    --------
    >>> hub_model = scmodtt.model.read_hub_model("modtt_reapseq")
    >>> model = hub_model.model
    >>> cells = model.sample(n_per_label=100, seed=0)

    """
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise FileNotFoundError(f"No scvi-hub model folder at {os.fspath(local_dir)!r}.")
    _check_hub_metadata(local_dir)
    if not (local_dir / MODEL_CARD_FILE).is_file():
        raise FileNotFoundError(
            f"The scvi-hub folder {os.fspath(local_dir)!r} has no model card ({MODEL_CARD_FILE}). "
            "Write the folder again with `scmodtt.model.to_hub_model(model, local_dir, "
            "overwrite=True)`."
        )
    has_data = any((local_dir / name).is_file() for name in _DATA_FILES)
    hub_model = HubModel(os.fspath(local_dir))
    if adata is not None:
        hub_model.load_model(adata=adata, accelerator=accelerator, device=device)
    elif not has_data and hub_model.metadata.training_data_url is None:
        raise ValueError(
            f"The scvi-hub folder {os.fspath(local_dir)!r} holds no training data and its "
            "metadata names no `training_data_url`: pass the data the model was trained on, "
            "`read_hub_model(local_dir, adata=mdata)`."
        )
    return hub_model


def _check_hub_metadata(local_dir: str | os.PathLike) -> HubMetadata:
    """Read and check the scvi-hub metadata file of a MODTT folder (see :func:`read_hub_model`)."""
    local_dir = Path(local_dir)
    path = local_dir / METADATA_FILE
    rewrite = (
        "or write the folder again with "
        "`scmodtt.model.to_hub_model(model, local_dir, overwrite=True)`."
    )
    if not path.is_file():
        raise FileNotFoundError(
            f"The scvi-hub folder {os.fspath(local_dir)!r} has no metadata file {METADATA_FILE}: "
            f"write one with `scvi.hub.HubMetadata(...).save(path)` {rewrite}"
        )
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f"The scvi-hub metadata {os.fspath(path)!r} is not JSON ({error})."
        ) from None
    if not isinstance(content, dict):
        raise ValueError(f"The scvi-hub metadata {os.fspath(path)!r} must be a JSON object.")
    expected = {field.name for field in dataclasses.fields(HubMetadata)}
    unknown = sorted(set(content) - expected)
    if unknown:
        raise ValueError(
            f"The scvi-hub metadata {os.fspath(path)!r} has fields scvi.hub.HubMetadata does not "
            f"know: {unknown} (known: {sorted(expected)}). Remove them, {rewrite}"
        )
    for name in REQUIRED_METADATA_FIELDS:
        if content.get(name) in (None, ""):
            raise ValueError(
                f"The scvi-hub metadata {os.fspath(path)!r} has no {name!r} field, which loading "
                f'a MODTT needs. Add `"{name}": {json.dumps(_expected_value(local_dir, name))}` '
                f"to the file, {rewrite}"
            )
    module_name, cls_name = content["model_parent_module"], content["model_cls_name"]
    try:
        module = importlib.import_module(module_name)
        problem = "has no such class"
    except ImportError:
        module, problem = None, "cannot be imported"
    if getattr(module, cls_name, None) is None:
        raise ValueError(
            f"The scvi-hub metadata {os.fspath(path)!r} names the model class {cls_name!r} in "
            f"module {module_name!r}, which {problem}. A MODTT has "
            '`"model_cls_name": "MODTT"` and `"model_parent_module": "scmodtt"`; '
            f"correct the file, {rewrite}"
        )
    return HubMetadata(**content)


def _expected_value(local_dir: Path, name: str) -> str:
    """The value a metadata field should have, as far as the folder tells."""
    if name == "model_cls_name":
        return "MODTT"
    if name == "model_parent_module":
        return "scmodtt"
    if name == "anndata_version":
        return version("anndata")
    try:  # the version of scvi-tools the model was trained with is in its registry
        from ._modtt import MODTT

        return MODTT.load_registry(os.fspath(local_dir))["scvi_version"]
    except (OSError, KeyError, ValueError):
        import scvi

        return scvi.__version__
