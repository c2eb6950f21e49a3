"""Generation of synthetic cells as MuData/AnnData that mirror the registered modalities."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS

from .._constants import PROTEIN_NORMALIZED_LAYER, RNA_NORMALIZED_LAYER
from .._normalization import clr, log1p_normalize_sparse
from ..module._modttvae import PRIORS
from ..module._priors import (
    DEFAULT_ODE_STEPS,
    LIBRARY_STAT_KEYS,
    check_sampling_settings,
    rare_labels,
)

#: ``obs`` column that marks generated cells.
SYNTHETIC_KEY = "synthetic"


class SyntheticCellsMixin:
    """``sample`` and ``generate_from_latent`` for :class:`~scmodtt.MODTT`."""

    def sample(
        self,
        labels: str | Sequence[str] | Mapping[str, int] | None = None,
        n_per_label: int = 100,
        batch: str | None = None,
        seed: int | None = None,
        return_anndata: bool = False,
        batch_size: int = 1024,
        prior: Literal["flow", "gaussian"] = "flow",
        n_steps: int = DEFAULT_ODE_STEPS,
        guidance: float = 1.0,
    ) -> MuData | ad.AnnData:
        """Generate synthetic cells conditioned on their label (cell type).

        For each requested label ``y`` and batch ``s``: the cell state ``(z, log library sizes)``
        from the prior, then counts from the decoder's likelihoods at those library sizes.

        - ``prior="flow"`` (default): ``(z, ℓ_rna, ℓ_adt) ~ p_flow(· | y, s)``, the conditional
          flow fitted to the training cells' posteriors by :meth:`train`, so library sizes vary
          with the cell state.
        - ``prior="gaussian"``: ``z ~ N(μ_y, σ_y²)``, the moment-matched label prior of the KL
          term, and library sizes drawn independently from the label's log-normal fits.

        Parameters
        ----------
        labels
            ``None``: every label that has training cells; a label or a list of labels; or a
            ``{label: n_cells}`` mapping.
        n_per_label
            Cells per label when ``labels`` is not a mapping (the total for a model without labels).
        batch
            Batch to generate in. ``None`` draws each cell's batch from the batch frequencies of its
            label's training cells.
        seed
            Random seed; the same seed gives the same cells. The global torch random state is left
            as it was.
        return_anndata
            Return one AnnData with RNA and protein features side by side (``var["modality"]``)
            instead of a MuData.
        batch_size
            Cells decoded at once.
        prior
            ``"flow"`` or ``"gaussian"`` (see above).
        n_steps
            Midpoint ODE steps of the flow (two network evaluations each).
        guidance
            Classifier-free guidance weight of the flow: 1 samples the label's distribution, > 1
            pushes cells towards what distinguishes the label (less diversity), 0 ignores it.

        Returns
        -------
        MuData with the registered modality names: raw counts in ``.X``, log1p-normalized RNA in
        ``layers["log1p_norm"]``, CLR protein in ``layers["clr"]``, ``obs[labels_key]``,
        ``obs[batch_key]`` and ``obs["synthetic"] = True``.

        Examples
        --------
        >>> synthetic = model.sample(n_per_label=500, seed=0)
        >>> synthetic = model.sample({"B": 300, "NK": 100}, seed=1)
        >>> gaussian = model.sample(n_per_label=500, seed=0, prior="gaussian")
        >>> both = anndata.concat([real, model.sample(return_anndata=True)], label="origin")

        """
        if prior not in PRIORS:
            raise ValueError(f"`prior` must be one of {PRIORS}, got {prior!r}.")
        check_sampling_settings(n_steps, guidance)
        if prior == "flow" and not self.is_flow_prior_fitted:
            raise ValueError(
                "This model has no fitted flow prior (trained with `flow_prior=False`, or saved "
                "before it was fitted). Fit it with `model.fit_flow_prior()`, or sample from the "
                "Gaussian label prior with `model.sample(..., prior='gaussian')`."
            )
        self._validate_anndata(self.adata)  # another model's set-up may have rewritten codes
        label_codes = self._requested_label_codes(labels, n_per_label)
        if prior == "flow":
            self._warn_rare_labels(label_codes)
        self.module.eval()
        with _seeded(seed, self.device):
            batch_codes = self._batch_codes_for_labels(label_codes, batch)
            z, libraries = self.module.draw_cell_states(
                torch.as_tensor(label_codes, device=self.device),
                torch.as_tensor(batch_codes, device=self.device),
                prior=prior,
                n_steps=n_steps,
                guidance=guidance,
            )
            return self._decode_cells(
                z, libraries, label_codes, batch_codes, batch_size, return_anndata
            )

    def generate_from_latent(
        self,
        z: np.ndarray,
        labels: Sequence[str] | None = None,
        batch: str | Sequence[str] | None = None,
        seed: int | None = None,
        return_anndata: bool = False,
        batch_size: int = 1024,
        library_stats: np.ndarray | None = None,
    ) -> MuData | ad.AnnData:
        """Decode given latent codes into synthetic cells (e.g. the latent-Gaussian protocol).

        Parameters
        ----------
        z
            Latent codes, ``(n_cells, n_latent)``.
        labels
            Label of each cell; sets the library-size distribution and ``obs[labels_key]``.
        batch
            Batch of each cell, or one batch for all; ``None`` draws from each label's batch
            frequencies.
        seed, return_anndata, batch_size
            As in :meth:`sample`.
        library_stats
            ``(n_cells, 3)`` log RNA library size, log ADT library size and ADT CLR centre of
            each cell (e.g. drawn jointly with ``z``); ``None`` draws them per label from the
            training cells' log-normal fits.

        """
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != self.module.n_latent:
            raise ValueError(
                f"`z` must have shape (n_cells, {self.module.n_latent}), got {tuple(z.shape)}."
            )
        if labels is None:
            label_codes = np.zeros(len(z), dtype=np.int64)
        else:
            label_codes = self._codes_of(labels)
            if len(label_codes) != len(z):
                raise ValueError(f"Got {len(label_codes)} labels for {len(z)} latent codes.")
        if library_stats is not None:
            library_stats = torch.as_tensor(np.asarray(library_stats), dtype=torch.float32)
            if library_stats.shape != (len(z), len(LIBRARY_STAT_KEYS)):
                raise ValueError(
                    f"`library_stats` must have shape ({len(z)}, {len(LIBRARY_STAT_KEYS)}) "
                    f"({', '.join(LIBRARY_STAT_KEYS)}), got {tuple(library_stats.shape)}."
                )
        self.module.eval()
        with _seeded(seed, self.device):
            if batch is None or isinstance(batch, str):
                batch_codes = self._batch_codes_for_labels(label_codes, batch)
            else:
                batch_codes = np.array([self._batch_codes_for(b)[0] for b in batch], dtype=np.int64)
            if library_stats is None:
                library_stats = self.module.library_prior(
                    torch.as_tensor(label_codes, device=self.device)
                )
            return self._decode_cells(
                z, library_stats, label_codes, batch_codes, batch_size, return_anndata
            )

    # ------------------------------------------------------------------ helpers
    def _known_labels(self) -> np.ndarray:
        """Labels the model (a query model: its reference) was trained on; their codes lead."""
        mapping = self._category_mapping(REGISTRY_KEYS.LABELS_KEY)
        return mapping[: int(self.module.known_labels.sum())]

    def _reference_label_codes(self) -> np.ndarray:
        """A query model's default labels: the reference's, those its flow was fitted on."""
        fitted = self.module.flow_prior.fitted_labels.cpu().numpy()[: len(self._known_labels())]
        return np.flatnonzero(fitted) if fitted.any() else np.arange(len(fitted))

    def _codes_of(self, labels: Sequence[str]) -> np.ndarray:
        known = self._known_labels()
        lookup = {str(label): code for code, label in enumerate(known)}
        unknown = sorted({str(label) for label in labels} - lookup.keys())
        if unknown:
            raise ValueError(
                f"Unknown label(s) {unknown}: the model was trained with labels {list(known)}."
            )
        return np.array([lookup[str(label)] for label in labels], dtype=np.int64)

    def _requested_label_codes(self, labels, n_per_label: int) -> np.ndarray:
        if self._labels_key() is None:
            if labels is not None:
                raise ValueError(
                    "This model was set up without `labels_key`, so it cannot generate cells of a "
                    "given label. Pass `labels=None`, or set up with `labels_key` and retrain."
                )
            return np.zeros(int(n_per_label), dtype=np.int64)
        if labels is None:
            # Only labels with training cells: an unused category of the label column has no
            # fitted prior to draw from.
            trained = (
                self._reference_label_codes()
                if self.is_query_model
                else np.unique(self._label_codes())
            )
            labels = list(self._known_labels()[trained])
        if isinstance(labels, str):
            labels = [labels]
        counts = dict(labels) if isinstance(labels, Mapping) else dict.fromkeys(labels, n_per_label)
        if any(int(n) < 0 for n in counts.values()):
            raise ValueError("Numbers of cells to generate must be non-negative.")
        codes = self._codes_of(list(counts))
        return np.repeat(codes, [int(n) for n in counts.values()])

    def _batch_codes_for_labels(self, label_codes: np.ndarray, batch: str | None) -> np.ndarray:
        if batch is not None:
            return np.full(len(label_codes), self._batch_codes_for(batch)[0], dtype=np.int64)
        training_labels = self._label_codes()
        training_batches = (
            np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.BATCH_KEY))
            .ravel()
            .astype(np.int64)
        )
        n_batch = self.summary_stats.n_batch
        joint = np.zeros((self.summary_stats.n_labels, n_batch))
        np.add.at(joint, (training_labels, training_batches), 1.0)
        joint = joint + (joint.sum(axis=1, keepdims=True) == 0)  # unseen label: uniform
        cumulative = np.cumsum(joint / joint.sum(axis=1, keepdims=True), axis=1)[label_codes]
        # Inverse-CDF draw per cell from the torch generator seeded by `_seeded`.
        uniforms = torch.rand(len(label_codes), dtype=torch.float64).numpy()[:, None]
        return np.minimum((uniforms > cumulative).sum(axis=1), n_batch - 1).astype(np.int64)

    def _warn_rare_labels(self, label_codes: np.ndarray) -> None:
        rare = rare_labels(label_codes, self.module.flow_prior.fitted_labels)
        if rare and self._labels_key() is not None:
            warnings.warn(
                f"Labels {[str(label) for label in self._known_labels()[rare]]} had too few "
                "training cells to fit the flow prior on: their cells are drawn from the Gaussian "
                "label prior (`prior='gaussian'`) instead.",
                UserWarning,
                stacklevel=3,
            )

    def _decode_cells(self, z, libraries, label_codes, batch_codes, batch_size, return_anndata):
        self.module.eval()
        batches_t = torch.as_tensor(batch_codes)
        labels_t = torch.as_tensor(label_codes)
        parts = [
            self.module.sample_counts(
                z[start : start + batch_size].to(self.device),
                batches_t[start : start + batch_size].to(self.device),
                libraries[start : start + batch_size].to(self.device),
                labels_t[start : start + batch_size].to(self.device),
            )
            for start in range(0, len(label_codes), batch_size)
        ]
        rna = _stack_csr([p[0] for p in parts], self.module.n_genes)
        protein = _stack_csr([p[1] for p in parts], self.module.n_proteins)
        obs = self._synthetic_obs(label_codes, batch_codes)
        return self._as_output(rna, protein, obs, return_anndata)

    def _synthetic_obs(self, label_codes: np.ndarray, batch_codes: np.ndarray) -> pd.DataFrame:
        obs = pd.DataFrame(index=pd.Index([f"synthetic_{i}" for i in range(len(label_codes))]))
        labels_key, batch_key = self._labels_key(), self._batch_key()
        if labels_key is not None:
            known = self._known_labels()
            obs[labels_key] = pd.Categorical.from_codes(label_codes, categories=known)
        if batch_key is not None:
            batches = self._category_mapping(REGISTRY_KEYS.BATCH_KEY)
            obs[batch_key] = pd.Categorical.from_codes(batch_codes, categories=batches)
        obs[SYNTHETIC_KEY] = True
        return obs

    def _as_output(
        self,
        rna_counts: sp.csr_matrix,
        protein_counts: sp.csr_matrix,
        obs: pd.DataFrame,
        return_anndata: bool,
    ):
        rna_mod, protein_mod = self._modality_names()
        rna_var = self.adata[rna_mod].var.copy()
        protein_var = self.adata[protein_mod].var.copy()
        rna_normalized = log1p_normalize_sparse(rna_counts)
        protein_normalized = clr(protein_counts).astype(np.float32)
        if return_anndata:
            var = pd.concat(
                [rna_var.assign(modality=rna_mod), protein_var.assign(modality=protein_mod)],
                join="outer",
            )
            return ad.AnnData(
                X=sp.hstack([rna_counts, protein_counts]).tocsr(),
                obs=obs,
                var=var,
                # Dense, as before: the CLR protein values are dense anyway, and scanpy-style
                # code concatenates this layer with dense real layers.
                layers={"normalized": np.hstack([rna_normalized.toarray(), protein_normalized])},
            )
        rna_adata = ad.AnnData(
            X=rna_counts,
            obs=obs.copy(),
            var=rna_var,
            layers={RNA_NORMALIZED_LAYER: rna_normalized},
        )
        protein_adata = ad.AnnData(
            X=protein_counts,
            obs=obs.copy(),
            var=protein_var,
            layers={PROTEIN_NORMALIZED_LAYER: protein_normalized},
        )
        mdata = MuData({rna_mod: rna_adata, protein_mod: protein_adata})
        mdata.obs = obs.copy()
        return mdata


def _stack_csr(parts: list[torch.Tensor], n_features: int) -> sp.csr_matrix:
    """Dense count chunks as one float32 CSR matrix, built chunk by chunk (no dense copy)."""
    blocks = []
    for part in parts:
        sparse = part.detach().cpu().float().to_sparse_csr()
        blocks.append(
            sp.csr_matrix(
                (
                    sparse.values().numpy(),
                    sparse.col_indices().numpy(),
                    sparse.crow_indices().numpy(),
                ),
                shape=tuple(part.shape),
            )
        )
    if not blocks:
        return sp.csr_matrix((0, n_features), dtype=np.float32)
    return sp.vstack(blocks, format="csr")


@contextmanager
def _seeded(seed: int | None, device: torch.device | str | None = None):
    """Draw from ``seed`` (if given) inside the block, leaving the global torch state as it was.

    The CPU generator and, for a model on a GPU, that GPU's generator are seeded and restored.
    """
    if seed is None:
        yield
        return
    device = torch.device(device if device is not None else "cpu")
    cuda_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.default_generator.manual_seed(seed)
        for cuda_device in cuda_devices:
            index = (
                cuda_device.index if cuda_device.index is not None else torch.cuda.current_device()
            )
            torch.cuda.default_generators[index].manual_seed(seed)
        yield
