"""Resumable training checkpoints of MODTT through Lightning.

Lightning's checkpoint (``trainer.save_checkpoint``) already holds the training plan's state dict
(the network *and* the buffers that training updates outside the optimiser: the moment-matched
label prior), the optimiser and scheduler states, the epoch and step counters (so the KL warm-up
continues where it stopped) and the callbacks' states (early stopping's best score and patience).
Three things it lacks for a resumed run to equal an uninterrupted one, which
:class:`TrainingStateCallback` adds under the ``"scmodtt"`` key of every checkpoint:

- the random number generator states (torch, CUDA, numpy, Python). The training data loader
  draws each epoch's shuffling seed, and the model its ``z ~ q(z | x)`` draws, from torch's global
  generator; without its state a resumed run reshuffles differently from the uninterrupted one;
- the train / validation / test split, which :meth:`~scmodtt.MODTT.train` reuses on resumption
  (the split is otherwise redrawn from ``scvi.settings.seed`` and the split arguments);
- the training history logged so far, so that ``model.history`` covers every epoch.

Everything stored is a tensor, a list or a number, so the checkpoint loads with
``torch.load(..., weights_only=True)``, as Lightning loads local checkpoints.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from scvi.train import SaveCheckpoint

logger = logging.getLogger(__name__)

#: Key of MODTT's own entries in a Lightning checkpoint.
CHECKPOINT_KEY = "scmodtt"
#: Name of the checkpoint file that ``checkpoint_dir`` keeps up to date.
LAST_CHECKPOINT = "last.ckpt"
_SPLITS = ("train", "validation", "test")


class ResumableCheckpoint(SaveCheckpoint):
    """Lightning's :class:`~lightning.pytorch.callbacks.ModelCheckpoint` of ``last.ckpt``.

    Writes the whole training state to ``dirpath/last.ckpt`` every ``every_n_epochs`` epochs,
    overwriting the previous one; :meth:`scmodtt.MODTT.train` resumes from it with ``ckpt_path``.

    It derives from :class:`scvi.train.SaveCheckpoint` only because scvi-tools'
    :class:`~scvi.train.Trainer` turns Lightning checkpointing on for a ``SaveCheckpoint`` in the
    callbacks and would otherwise add one of its own (best-model saves as model folders, which
    cannot resume training); every method that ``SaveCheckpoint`` changes is Lightning's again.

    Parameters
    ----------
    dirpath
        Folder of the checkpoint (created if needed).
    every_n_epochs
        Epochs between checkpoints.

    Examples
    --------
    >>> model.train(max_epochs=400, checkpoint_dir="ckpts/")  # doctest: +SKIP
    >>> # after an interruption, in a new session with the same seed and arguments:
    >>> model.train(max_epochs=400, checkpoint_dir="ckpts/", ckpt_path="last")  # doctest: +SKIP

    """

    def __init__(self, dirpath: str | os.PathLike, every_n_epochs: int = 1):
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int | np.integer):
            raise ValueError(
                f"`checkpoint_every_n_epochs` must be an integer, got {every_n_epochs!r}."
            )
        if every_n_epochs < 1:
            raise ValueError(
                f"`checkpoint_every_n_epochs` must be at least 1, got {every_n_epochs}."
            )
        ModelCheckpoint.__init__(
            self,
            dirpath=os.fspath(dirpath),
            # One file, overwritten: the newest checkpoint is the one to resume from.
            filename=Path(LAST_CHECKPOINT).stem,
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            every_n_epochs=int(every_n_epochs),
            # After validation, so that early stopping's state for the epoch is in the file.
            save_on_train_epoch_end=True,
        )
        self.load_best_on_end = False
        self.loss_is_nan = False
        self.check_nan_gradients = False

    on_save_checkpoint = ModelCheckpoint.on_save_checkpoint
    _remove_checkpoint = ModelCheckpoint._remove_checkpoint
    _update_best_and_save = ModelCheckpoint._update_best_and_save

    def on_train_end(self, trainer, pl_module) -> None:
        """Nothing to load: the model keeps its last state, as without checkpoints."""

    def on_exception(self, trainer, pl_module, exception) -> None:
        """Leave the last checkpoint as it is: it is what a resumed run starts from."""


class TrainingStateCallback(Callback):
    """Adds random states, data split and history to every Lightning checkpoint; restores them.

    :meth:`scmodtt.MODTT.train` adds it to every training, so that any
    :class:`~lightning.pytorch.callbacks.ModelCheckpoint` (``checkpoint_dir``'s or one passed in
    ``callbacks``) writes checkpoints that resume to the uninterrupted result.
    """

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        splitter = trainer.datamodule
        checkpoint[CHECKPOINT_KEY] = {
            "random_state": _collect_random_state(),
            "split": {
                name: torch.as_tensor(np.asarray(getattr(splitter, attr, []), dtype=np.int64))
                for name, attr in zip(_SPLITS, ("train_idx", "val_idx", "test_idx"), strict=True)
            },
            "history": _history_to_plain(_history_with_pending_epoch(trainer)),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            logger.warning(
                "The checkpoint has no random states (it was not written by MODTT.train): the "
                "resumed training continues from its weights and optimiser but shuffles the "
                "data differently from an uninterrupted run."
            )
            return
        # Restored now: between here and the first draw (Lightning creates the training data
        # loader's iterator, which draws the epoch's shuffling seed, before any epoch hook) the
        # resumed run consumes no random numbers, as the uninterrupted run consumed none between
        # writing the checkpoint and starting its next epoch.
        _set_random_state(state["random_state"])
        experiment = getattr(trainer.logger, "experiment", None)
        if trainer.is_global_zero and isinstance(getattr(experiment, "data", None), dict):
            experiment.data = _history_from_plain(state["history"])


def resolve_checkpoint(ckpt_path: str | os.PathLike) -> Path:
    """The checkpoint file of ``ckpt_path``: a ``.ckpt`` file or a folder with ``last.ckpt``."""
    path = Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / LAST_CHECKPOINT
    if not path.is_file():
        where = Path(ckpt_path).expanduser()
        found = sorted(p.name for p in where.glob("*.ckpt")) if where.is_dir() else []
        raise FileNotFoundError(
            f"No checkpoint to resume from at {os.fspath(ckpt_path)!r}"
            + (f" (the folder holds {found})" if found else "")
            + ": pass the `.ckpt` file or the `checkpoint_dir` of the interrupted `train()`, "
            f"which holds {LAST_CHECKPOINT!r} once an epoch has finished."
        )
    return path


def checkpoint_split(path: Path, n_obs: int) -> list[np.ndarray] | None:
    """Train, validation and test indices stored in a MODTT checkpoint (``None`` if absent)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get(CHECKPOINT_KEY)
    if state is None:
        return None
    split = [state["split"][name].numpy().astype(np.int64) for name in _SPLITS]
    n_cells = sum(len(part) for part in split)
    if n_cells != n_obs or (n_cells and max(part.max(initial=-1) for part in split) >= n_obs):
        raise ValueError(
            f"The checkpoint {os.fspath(path)!r} was written while training on {n_cells} cells; "
            f"this model's data has {n_obs}. Resume with the data of the interrupted training."
        )
    return split


def _collect_random_state() -> dict:
    # The legacy global generator is the state to carry over (code may draw from it).
    numpy_state = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.as_tensor(numpy_state[1].astype(np.int64)),
            "position": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "python": _python_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    random.setstate(_python_state_from_plain(state["python"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning(
                "The checkpoint holds random states of %d GPUs, this machine has %d: the resumed "
                "training does not continue the uninterrupted run's GPU draws.",
                len(cuda),
                torch.cuda.device_count(),
            )


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss = state
    return [int(version), list(internal), gauss]


def _python_state_from_plain(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _history_with_pending_epoch(trainer) -> dict:
    """The logger's history plus the epoch metrics Lightning logs just after the checkpoint.

    Lightning writes end-of-epoch checkpoints before it hands the epoch's training metrics to
    the logger (``update_train_epoch_metrics``); without them a resumed history would miss them
    for that epoch.
    """
    history = {
        key: frame.copy() for key, frame in (getattr(trainer.logger, "history", None) or {}).items()
    }
    connector = getattr(trainer, "_logger_connector", None)
    try:
        pending = connector.metrics["log"] if connector is not None else {}
    except (AttributeError, KeyError, TypeError):  # another Lightning: keep the logged history
        pending = {}
    epoch = trainer.current_epoch
    for metric, value in pending.items():
        if metric in history and history[metric].index.name not in (None, "epoch"):
            continue
        frame = history.setdefault(metric, pd.DataFrame(columns=[metric]))
        frame.index.name = "epoch"
        frame.loc[epoch, metric] = _plain_number(value)
    return history


def _history_to_plain(history) -> dict:
    """Logged metrics as ``{metric: {"index": [...], "values": [...], "index_name": ...}}``."""
    plain = {}
    for metric, frame in (history or {}).items():
        plain[metric] = {
            "index": [int(i) for i in frame.index],
            "values": [_plain_number(v) for v in frame[metric]],
            "index_name": str(frame.index.name),
        }
    return plain


def _history_from_plain(plain: dict) -> dict:
    history = {}
    for metric, column in plain.items():
        frame = pd.DataFrame(
            {metric: pd.Series(column["values"], dtype=object)},
        )
        frame.index = pd.Index(column["index"], name=column["index_name"])
        history[metric] = frame
    return history


def _plain_number(value):
    if isinstance(value, torch.Tensor):
        value = value.item()
    if value is None:
        return None
    return float(value)
