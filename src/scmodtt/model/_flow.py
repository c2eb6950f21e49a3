"""Second training stage of MODTT: the conditional flow prior over (z, log library sizes)."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scvi
import torch
import torch.distributed as dist
from scvi import REGISTRY_KEYS
from scvi.module._constants import MODULE_KEYS

from ._ondisk import OnDiskRows

logger = logging.getLogger(__name__)

#: Optimiser steps the default flow schedule aims at, whatever the number of cells.
FLOW_TARGET_STEPS = 4000
#: Labels with fewer training cells are left to the Gaussian prior.
FLOW_MIN_CELLS_PER_LABEL = 10
#: Cells per step of the default flow fit.
FLOW_BATCH_SIZE = 256
#: Cells per forward pass when the training cells' posteriors are collected for the flow fit.
POSTERIOR_BATCH_SIZE = 1024


def default_flow_epochs(n_cells: int, batch_size: int = FLOW_BATCH_SIZE) -> int:
    """Epochs of the default flow schedule: about 4,000 optimiser steps, 20 to 1,000 epochs."""
    steps_per_epoch = math.ceil(n_cells / batch_size)
    return int(np.clip(round(FLOW_TARGET_STEPS / steps_per_epoch), 20, 1000))


class FlowPriorMixin:
    """``fit_flow_prior`` for :class:`~scmodtt.MODTT`."""

    @property
    def is_flow_prior_fitted(self) -> bool:
        """Whether the conditional flow prior has been fitted (saved and loaded with the model)."""
        return self.module.flow_prior.is_fitted

    def fit_flow_prior(
        self,
        indices: Sequence[int] | None = None,
        max_epochs: int | None = None,
        batch_size: int = FLOW_BATCH_SIZE,
        lr: float = 2e-3,
        label_dropout: float = 0.1,
        min_cells_per_label: int = FLOW_MIN_CELLS_PER_LABEL,
        seed: int | None = None,
        progress: bool | None = None,
        posterior: Literal["samples", "means"] = "samples",
    ) -> list[float]:
        """Fit the conditional flow prior to the trained encoder's posteriors.

        The flow models each training cell's latent code together with its log RNA and ADT
        library sizes (and ADT CLR centre), conditioned on label and batch. Each epoch draws a new
        ``z ~ q(z | x)`` per cell, so the flow learns the aggregate posterior, not only its
        means. :meth:`train` calls this after the autoencoder; call it again to refit, e.g. with
        another schedule.

        Parameters
        ----------
        indices
            Cells to fit on; default: the autoencoder's training cells (all cells if the model
            was not trained by :meth:`train`).
        max_epochs
            Passes through the cells; default: about 4,000 optimiser steps, at least 20 and at
            most 1,000 epochs.
        batch_size
            Cells per step.
        lr
            Peak learning rate (one-cycle schedule).
        label_dropout
            Fraction of cells shown without label and batch, for classifier-free guidance.
        min_cells_per_label
            Labels with fewer cells are not fitted; :meth:`sample` draws them from the Gaussian
            label prior and warns.
        seed
            Seed of the fit; default ``scvi.settings.seed``.
        progress
            Show a progress bar (one step per epoch, in ``scvi.settings.progress_bar_style``);
            default: when ``scvi.settings.verbosity`` is ``INFO`` or more verbose.
            :meth:`train` passes its ``enable_progress_bar``. Only the first process shows it
            under distributed training.
        posterior
            ``"samples"``: a fresh ``z ~ q(z | x)`` per cell and epoch (the aggregate posterior,
            the default); ``"means"``: the posterior means only, as the benchmark's
            ``latent_flow`` protocol fits other models' latents.

        Returns
        -------
        Mean flow-matching loss per epoch (also in ``model.flow_history_``).

        Examples
        --------
        >>> model.train(flow_prior=False)
        >>> losses = model.fit_flow_prior(max_epochs=300)
        >>> cells = model.sample(n_per_label=200, seed=0)

        """
        if indices is None:
            indices = self.train_indices
        if posterior not in ("samples", "means"):
            raise ValueError(f"`posterior` must be 'samples' or 'means', got {posterior!r}.")
        values, scales, labels, batches = self._flow_training_data(indices, batch_size)
        if posterior == "means":
            if isinstance(scales, OnDiskRows):
                scales.close()
            scales = None
        if seed is None:
            seed = scvi.settings.seed if scvi.settings.seed is not None else 0
        if progress is None:
            progress = scvi.settings.verbosity <= logging.INFO
        progress = bool(progress) and _rank() == 0
        if max_epochs is None:
            max_epochs = default_flow_epochs(len(values), batch_size)
        flow = self.module.flow_prior
        try:
            history = flow.fit(
                values,
                labels,
                batches,
                scales=scales,
                max_epochs=max_epochs,
                batch_size=batch_size,
                lr=lr,
                label_dropout=label_dropout,
                min_cells_per_label=min_cells_per_label,
                seed=seed,
                progress=progress,
            )
        finally:  # backed data: the values' temporary files
            n_cells = len(values)
            for part in (values, scales):
                if isinstance(part, OnDiskRows):
                    part.close()
        _synchronise_across_processes(flow)
        counts = np.bincount(labels.cpu().numpy(), minlength=flow.n_labels)
        skipped = self._known_labels()[(counts > 0) & ~flow.fitted_labels.cpu().numpy()]
        if self._labels_key() is not None and len(skipped):
            warnings.warn(
                f"Labels {list(map(str, skipped))} have fewer than {min_cells_per_label} "
                "training cells, too few to fit the flow prior on: `sample` draws them from the "
                "Gaussian label prior instead.",
                UserWarning,
                stacklevel=2,
            )
        logger.info(
            "Flow prior fitted on %d cells of %d labels, %d epochs.",
            n_cells,
            int((counts > 0).sum()),
            max_epochs,
        )
        self.flow_history_ = history
        return history

    @torch.no_grad()
    def _flow_training_data(self, indices, batch_size: int):
        """Posterior means and scales with library statistics, labels and batches of cells."""
        if getattr(self.adata, "isbacked", False):
            return self._flow_training_data_on_disk(indices)
        dataloader = self._make_data_loader(
            adata=self.adata, indices=indices, batch_size=POSTERIOR_BATCH_SIZE
        )
        values, scales, labels, batches = [], [], [], []
        self.module.eval()
        for tensors in dataloader:
            qz = self.module.inference(**self.module._get_inference_input(tensors))[
                MODULE_KEYS.QZ_KEY
            ]
            libraries = self.module.library_statistics(tensors)
            values.append(torch.cat([qz.loc, libraries], dim=-1).cpu())
            scales.append(torch.cat([qz.scale, torch.zeros_like(libraries)], dim=-1).cpu())
            labels.append(tensors[REGISTRY_KEYS.LABELS_KEY].reshape(-1).long().cpu())
            batches.append(tensors[REGISTRY_KEYS.BATCH_KEY].reshape(-1).long().cpu())
        device = self.module.flow_prior.centre.device
        return tuple(torch.cat(part).to(device) for part in (values, scales, labels, batches))

    @torch.no_grad()
    def _flow_training_data_on_disk(self, indices):
        """:meth:`_flow_training_data` of backed data: the values go to temporary files.

        Each cell's ``2 × (n_latent + 3)`` values would otherwise grow memory with the number of
        cells; on disk, the flow fit reads them per mini-batch. Rows are in the order of
        ``indices``, as in memory, so the fit sees the same cells in the same order.
        """
        indices = np.asarray(indices).ravel()
        device = self.module.flow_prior.centre.device
        n_dims = self.module.flow_prior.n_dims
        values = OnDiskRows(len(indices), n_dims, device)
        scales = OnDiskRows(len(indices), n_dims, device)
        labels = self._label_codes()[indices]
        batches = (
            np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
            .ravel()
            .astype(np.int64)[indices]
        )
        dataloader = self._make_data_loader(
            adata=self.adata, indices=indices, batch_size=POSTERIOR_BATCH_SIZE
        )
        self.module.eval()
        start = 0
        for tensors in dataloader:  # in the order of `indices` (see `MODTTDataManager`)
            qz = self.module.inference(**self.module._get_inference_input(tensors))[
                MODULE_KEYS.QZ_KEY
            ]
            libraries = self.module.library_statistics(tensors)
            values.write(start, torch.cat([qz.loc, libraries], dim=-1).cpu().numpy())
            scales.write(
                start, torch.cat([qz.scale, torch.zeros_like(libraries)], dim=-1).cpu().numpy()
            )
            start += len(libraries)
            # Free this mini-batch before the loader reads the next, so that one is held at a time.
            del tensors, qz, libraries
        return (
            values,
            scales,
            torch.as_tensor(labels, device=device),
            torch.as_tensor(batches, device=device),
        )


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _synchronise_across_processes(flow: torch.nn.Module) -> None:
    """Copy the first process's fitted flow to every process of a distributed run.

    After DDP training each process holds the same autoencoder (same weights, and the label
    prior's all-reduced moments) and the same training cells, and the fit is seeded and starts
    from seeded weights, so every process fits the same flow, at the same time: none waits for
    another. The broadcast then makes them equal bit for bit, whatever kernels do not reproduce
    exactly across devices (e.g. atomic additions in GPU embedding gradients). Under the spawn
    and notebook strategies only the main process runs this, outside any process group.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    # NCCL broadcasts from each process's own GPU (scvi-tools may leave every process's model on
    # the first one after training), gloo from the CPU.
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    for tensor in flow.state_dict().values():  # detached views of the flow's own tensors
        # Booleans travel as bytes: not every backend broadcasts them.
        dtype = torch.uint8 if tensor.dtype == torch.bool else tensor.dtype
        message = tensor.to(device=device, dtype=dtype)
        dist.broadcast(message, src=0)
        tensor.copy_(message)
