"""Priors over MODTT's latent space and library sizes: the one home for every generator's draws.

- :class:`LabelGaussianPrior`: a diagonal Gaussian ``p(z | y)`` per label, fitted during
  autoencoder training by moment matching of the label's posteriors (the KL term's prior).
- :class:`LibraryGaussianPrior`: per-label Gaussians of the log RNA and ADT library sizes and the
  CLR centre, drawn independently of the cell state (``prior="gaussian"``).
- :class:`ConditionalFlowPrior`: a conditional flow-matching model of ``(z, log libraries)`` given
  label and batch, fitted to the trained encoder's posteriors after the autoencoder (the two-stage
  design of CFGen and scLDM); the default generator of :meth:`scmodtt.MODTT.sample`.
- :func:`per_label_gaussian_draws`: full-covariance Gaussian per label in numpy, the
  ``latent_gaussian`` and ``linear`` benchmark protocols.

Why the flow is written here rather than taken from ``torchcfm`` or ``flow_matching``: with
straight (optimal-transport) conditional paths the training target is three lines and a
fixed-step midpoint solver four; those libraries add dependencies (POT, torchdyn) for exactly
this, and ``torchcfm``'s mini-batch OT pairing matches noise across labels, which a
label-conditional flow must not do.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from scvi.utils import track
from torch import nn
from torch.distributions import Normal

logger = logging.getLogger(__name__)

#: Keys of the per-cell library statistics that new cells need: log RNA and ADT library sizes and
#: the ADT CLR centre (used by the Gaussian likelihood to return to counts).
LIBRARY_STAT_KEYS = ("rna_log_library", "protein_log_library", "protein_centre")
#: Weight of each training mini-batch in the moving average that fits the label prior.
PRIOR_MOMENTUM = 0.05
#: Ridge added to per-label covariances: labels with fewer cells than dimensions stay drawable.
COVARIANCE_RIDGE = 1e-3
#: Bounds of the sampling settings, checked before any work.
MAX_GUIDANCE = 10.0
MAX_ODE_STEPS = 1000
#: Midpoint steps of a flow solve by default. On trained REAP-seq flows 8 steps land within 0.6%
#: of a dimension's spread of a 200-step solve (20 steps: 0.5%), and no benchmark metric moves
#: (``scripts/ode_steps.py``; user guide, "Choosing the defaults"); each step costs two
#: evaluations of the velocity field, which is most of ``sample``'s time.
DEFAULT_ODE_STEPS = 8
#: Cells integrated together by the ODE solver.
_ODE_CHUNK = 4096


#: Rows per block of :func:`column_moments` (a few MB of float64 at the flow's width).
MOMENT_BLOCK_ROWS = 16_384


def column_moments(rows_source, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased standard deviation of each column over ``rows``, in float64 blocks.

    ``rows_source`` is a tensor or anything indexed by a tensor of row numbers (e.g.
    :class:`~scmodtt.model._ondisk.OnDiskRows`). The blocks are the same whatever holds the
    rows, so in-memory and on-disk values give identical moments.
    """
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    total = squares = 0.0
    for start in range(0, len(rows), MOMENT_BLOCK_ROWS):
        block = rows_source[torch.from_numpy(rows[start : start + MOMENT_BLOCK_ROWS])]
        block = block.detach().cpu().double()
        total = total + block.sum(0)
        squares = squares + (block**2).sum(0)
    n = len(rows)
    mean = total / max(n, 1)
    variance = ((squares - n * mean**2) / max(n - 1, 1)).clamp(min=0.0)
    device = rows_source.device
    return mean.float().to(device), variance.sqrt().float().to(device)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the processes of a distributed run (itself in a single process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


# ---------------------------------------------------------------------- Gaussian label prior
class LabelGaussianPrior(nn.Module):
    """Diagonal Gaussian ``p(z | y)`` per label, fitted by moment matching (buffers, no gradient).

    For a fixed encoder, the Gaussian ``p(z | y)`` that minimises the summed
    ``KL(q(z|x) || p(z|y))`` over the cells of label ``y`` matches the mean and the second moment
    of their posteriors. Tracking it as a moving average of mini-batch moments reaches it in tens
    of steps; a gradient-learned prior at lr 1e-3 barely leaves ``N(0, I)`` in a few hundred
    steps, and conditional samples then all look alike.

    Parameters
    ----------
    n_labels
        Number of labels (1 for a model without labels: ``N(0, I)``, never updated).
    n_latent
        Latent dimension.

    """

    def __init__(self, n_labels: int, n_latent: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_labels, n_latent))
        self.register_buffer("log_scale", torch.zeros(n_labels, n_latent))
        self.register_buffer("second_moment", torch.ones(n_labels, n_latent))

    def forward(self, label_index: torch.Tensor) -> Normal:
        """``p(z | y)`` of each cell, from its label code ``(n,)`` or ``(n, 1)``."""
        index = label_index.reshape(-1).long()
        return Normal(self.mean[index], self.log_scale[index].exp())

    @torch.no_grad()
    def update(self, qz: Normal, label_index: torch.Tensor) -> None:
        """Move each label present in the mini-batch towards its cells' posterior moments."""
        n_labels = self.mean.shape[0]
        one_hot = nn.functional.one_hot(label_index.reshape(-1).long(), n_labels).to(qz.loc.dtype)
        # Per-label sums, added over processes under distributed training so that every rank
        # takes the same step from the whole global mini-batch and holds the same prior.
        sums = all_reduce_sum(
            torch.cat(
                [
                    one_hot.sum(0)[:, None],
                    one_hot.T @ qz.loc,
                    one_hot.T @ (qz.loc**2 + qz.scale**2),
                ],
                dim=1,
            )
        )
        n_latent = qz.loc.shape[-1]
        counts = sums[:, 0]
        present = counts > 0
        mean = sums[present, 1 : 1 + n_latent] / counts[present, None]
        second = sums[present, 1 + n_latent :] / counts[present, None]
        self.mean[present] += PRIOR_MOMENTUM * (mean - self.mean[present])
        self.second_moment[present] += PRIOR_MOMENTUM * (second - self.second_moment[present])
        variance = (self.second_moment - self.mean**2).clamp(min=1e-4)
        self.log_scale.copy_(0.5 * variance.log())


# ---------------------------------------------------------------------- library sizes
def library_statistics(rna_counts, protein_counts) -> np.ndarray:
    """Per-cell log RNA and ADT library sizes and ADT CLR centre, ``(n_cells, 3)``, from counts."""
    rna_total = np.asarray(rna_counts.sum(axis=1)).ravel()
    protein = protein_counts.toarray() if hasattr(protein_counts, "toarray") else protein_counts
    protein = np.asarray(protein, dtype=np.float64)
    return np.stack(
        [
            np.log(np.maximum(rna_total, 1.0)),
            np.log(np.maximum(protein.sum(axis=1), 1.0)),
            np.log1p(protein).mean(axis=1),
        ],
        axis=1,
    )


def library_statistics_torch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`library_statistics` of a mini-batch of RNA ``x`` and ADT ``y`` counts, ``(n, 3)``."""
    return torch.cat(
        [
            torch.log(x.sum(-1, keepdim=True).clamp(min=1.0)),
            torch.log(y.sum(-1, keepdim=True).clamp(min=1.0)),
            torch.log1p(y).mean(-1, keepdim=True),
        ],
        dim=-1,
    )


class LibraryGaussianPrior(nn.Module):
    """Independent per-label Gaussians of the library statistics (``prior="gaussian"``).

    The statistics are ``LIBRARY_STAT_KEYS``: log RNA and ADT library sizes, ADT CLR centre.

    Parameters
    ----------
    stats
        ``(n_labels, 3, 2)``: mean and standard deviation of each statistic per label.

    """

    def __init__(self, stats: np.ndarray):
        super().__init__()
        self.register_buffer("stats", torch.as_tensor(np.asarray(stats), dtype=torch.float32))

    @classmethod
    def standard(cls, n_labels: int) -> LibraryGaussianPrior:
        """Placeholder ``N(0, 1)`` statistics, replaced by a loaded state dict."""
        return cls(np.tile([[[0.0, 1.0]]], (n_labels, len(LIBRARY_STAT_KEYS), 1)))

    def forward(self, label_index: torch.Tensor) -> torch.Tensor:
        """Draw ``(n, 3)`` statistics for cells of the given labels."""
        stats = self.stats[label_index.reshape(-1).long()]
        return stats[..., 0] + stats[..., 1] * torch.randn_like(stats[..., 0])


def per_label_moments(values: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-label mean and standard deviation of each column, ``(n_labels, n_columns, 2)``."""
    labels = np.asarray(labels, dtype=np.int64)
    one_hot = np.zeros((len(labels), n_labels))
    one_hot[np.arange(len(labels)), labels] = 1.0
    counts = one_hot.sum(0)[:, None]
    has_cells = counts > 0
    mean = np.where(has_cells, one_hot.T @ values / np.maximum(counts, 1), values.mean(0))
    second = np.where(has_cells, one_hot.T @ values**2 / np.maximum(counts, 1), (values**2).mean(0))
    std = np.sqrt(np.maximum(second - mean**2, 0.0))
    return np.stack([mean, std], axis=-1)


def per_label_gaussian_draws(
    values: np.ndarray, labels: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``len(wanted)`` rows from a full-covariance Gaussian fitted per label to ``values``.

    Parameters
    ----------
    values
        ``(n_cells, d)`` values of the fitting cells.
    labels
        Label of each fitting cell.
    wanted
        Label of each cell to draw.
    rng
        Source of randomness.

    """
    draws = np.empty((len(wanted), values.shape[1]))
    for label in np.unique(wanted):  # a handful of cell types, not cells
        rows = values[labels == label]
        target = wanted == label
        mean = rows.mean(axis=0)
        covariance = (
            np.cov(rows, rowvar=False) if len(rows) > 1 else np.zeros((values.shape[1],) * 2)
        )
        covariance = np.atleast_2d(covariance) + COVARIANCE_RIDGE * np.eye(values.shape[1])
        draws[target] = rng.multivariate_normal(
            mean, covariance, size=int(target.sum()), method="cholesky"
        )
    return draws


# ---------------------------------------------------------------------- conditional flow
def check_sampling_settings(n_steps: int, guidance: float) -> None:
    """Raise a ValueError for an ODE step count or guidance weight out of range."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer):
        raise ValueError(f"`n_steps` must be an integer, got {n_steps!r}.")
    if not 1 <= n_steps <= MAX_ODE_STEPS:
        raise ValueError(
            f"`n_steps` must be between 1 and {MAX_ODE_STEPS} ODE steps, got {n_steps}; "
            "10–50 is the useful range."
        )
    if not (np.isfinite(guidance) and 0.0 <= guidance <= MAX_GUIDANCE):
        raise ValueError(
            f"`guidance` must be a number between 0 and {MAX_GUIDANCE:g} (1 = plain conditional "
            f"sampling, > 1 classifier-free guidance towards the label), got {guidance!r}."
        )


class _TimeEmbedding(nn.Module):
    """Sinusoidal features of the flow time ``t ∈ [0, 1]`` followed by a linear map."""

    def __init__(self, n_hidden: int, n_frequencies: int = 16):
        super().__init__()
        self.register_buffer(
            "frequencies", torch.exp(torch.linspace(0.0, math.log(1000.0), n_frequencies))
        )
        self.linear = nn.Linear(2 * n_frequencies, n_hidden)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.reshape(-1, 1) * self.frequencies
        return self.linear(torch.cat([angles.sin(), angles.cos()], dim=-1))


class _ResidualBlock(nn.Module):
    """``h + W₂ SiLU(W₁ LayerNorm(h) + c)``: the condition ``c`` enters every block."""

    def __init__(self, n_hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(n_hidden)
        self.inner = nn.Linear(n_hidden, n_hidden)
        self.outer = nn.Linear(n_hidden, n_hidden)

    def forward(self, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return h + self.outer(nn.functional.silu(self.inner(self.norm(h)) + condition))


class VelocityField(nn.Module):
    """Residual MLP ``v(x, t | label, batch)`` with a time embedding.

    Index ``n_labels`` (``n_batch``) is the "no label" ("no batch") token used for
    classifier-free guidance.

    Parameters
    ----------
    n_dims
        Dimension of the modelled values.
    n_labels, n_batch
        Conditioning categories.
    n_hidden
        Width of the residual blocks.
    n_layers
        Number of residual blocks.

    """

    def __init__(self, n_dims: int, n_labels: int, n_batch: int, n_hidden: int, n_layers: int):
        super().__init__()
        self.n_labels, self.n_batch = n_labels, n_batch
        self.input = nn.Linear(n_dims, n_hidden)
        self.time = _TimeEmbedding(n_hidden)
        self.label = nn.Embedding(n_labels + 1, n_hidden)
        self.batch = nn.Embedding(n_batch + 1, n_hidden)
        self.blocks = nn.ModuleList(_ResidualBlock(n_hidden) for _ in range(n_layers))
        self.output = nn.Sequential(nn.LayerNorm(n_hidden), nn.Linear(n_hidden, n_dims))

    def embed_condition(self, labels: torch.Tensor, batches: torch.Tensor) -> torch.Tensor:
        """Label plus batch embedding, ``(n, n_hidden)``: fixed along an ODE solve."""
        return self.label(labels) + self.batch(batches)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, batches: torch.Tensor
    ) -> torch.Tensor:
        return self.field(x, t, self.embed_condition(labels, batches))

    def field(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Velocity given an embedded condition; ``t`` is ``(n, 1)`` or one shared ``(1, 1)``."""
        condition = nn.functional.silu(self.time(t) + condition)
        h = self.input(x)
        for block in self.blocks:  # a few layers, not modules or cells
            h = block(h, condition)
        return self.output(h)


class ConditionalFlowPrior(nn.Module):
    """Conditional flow matching of ``(z, log libraries)`` given label and batch.

    Straight conditional paths ``x_t = (1 − t)·ε + t·x₁`` from standard noise ``ε`` to a
    standardized data point ``x₁`` with the regression target ``x₁ − ε`` (optimal-transport
    conditional flow matching, Lipman et al. 2023); sampled by integrating
    ``dx/dt = v(x, t | y, s)`` from ``t = 0`` to ``1`` with a fixed-step midpoint rule, optionally
    with classifier-free guidance ``v = v(∅) + w·(v(y) − v(∅))``.

    The parameters stay frozen (``requires_grad=False``) outside ``fit``, so the
    autoencoder's optimiser and its parameter counts leave them alone.

    Parameters
    ----------
    n_dims
        Dimension of the modelled values (``n_latent + 3`` for MODTT).
    n_labels, n_batch
        Conditioning categories (1 each when the data has none).
    n_hidden, n_layers
        Width and number of residual blocks of the velocity field.

    Examples
    --------
    >>> flow = ConditionalFlowPrior(n_dims=2, n_labels=2, n_batch=1)
    >>> flow.fit(values, labels, batches, seed=0)  # doctest: +SKIP
    >>> draws = flow.sample(torch.tensor([0, 1]), torch.tensor([0, 0]))  # doctest: +SKIP

    """

    def __init__(
        self, n_dims: int, n_labels: int, n_batch: int, n_hidden: int = 128, n_layers: int = 3
    ):
        super().__init__()
        self.n_dims, self.n_labels, self.n_batch = n_dims, n_labels, n_batch
        self.velocity = VelocityField(n_dims, n_labels, n_batch, n_hidden, n_layers)
        self.register_buffer("centre", torch.zeros(n_dims))
        self.register_buffer("spread", torch.ones(n_dims))
        # Which labels the flow was fitted on (others fall back to the Gaussian prior).
        self.register_buffer("fitted_labels", torch.zeros(n_labels, dtype=torch.bool))
        self.requires_grad_(False)

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has run (saved with the state dict)."""
        return bool(self.fitted_labels.any())

    def fit(
        self,
        values: torch.Tensor,
        labels: torch.Tensor,
        batches: torch.Tensor,
        scales: torch.Tensor | None = None,
        max_epochs: int = 300,
        batch_size: int = 256,
        lr: float = 2e-3,
        label_dropout: float = 0.1,
        min_cells_per_label: int = 10,
        seed: int = 0,
        progress: bool = False,
    ) -> list[float]:
        """Fit the velocity field to ``values`` (rows are cells).

        Parameters
        ----------
        values
            ``(n_cells, n_dims)`` fitting values, e.g. posterior means and log libraries: a
            tensor, or rows read per mini-batch (indexing by a tensor of row numbers returns
            them on ``values.device``), as :class:`~scmodtt.model._ondisk.OnDiskRows` holds
            them on disk.
        labels, batches
            Integer codes ``(n_cells,)``.
        scales
            Optional ``(n_cells, n_dims)`` standard deviations (held as ``values`` is): each
            epoch sees a fresh draw ``values + scales · ε`` (the aggregate posterior rather
            than its means).
        max_epochs
            Passes through the cells; the learning rate follows a cosine schedule to 0.
        batch_size
            Cells per step.
        lr
            Peak AdamW learning rate.
        label_dropout
            Fraction of cells whose label (and batch) is replaced by the "none" token, which
            classifier-free guidance needs; ``0`` disables guidance.
        min_cells_per_label
            Labels with fewer fitting cells are not fitted; ``sample`` must not be asked for
            them (the model falls back to its Gaussian prior and warns).
        seed
            Seed of the batch order, the noise and the path times.
        progress
            Show a progress bar.

        Returns
        -------
        The mean flow-matching loss of each epoch.

        """
        in_memory = isinstance(values, torch.Tensor)
        if in_memory:
            values = values.detach().float()
            scales = None if scales is None else scales.detach().float()
        labels, batches = labels.reshape(-1).long(), batches.reshape(-1).long()
        counts = torch.bincount(labels, minlength=self.n_labels)
        self.fitted_labels.copy_(counts >= min_cells_per_label)
        # Rows of the fitted labels' cells, read mini-batch by mini-batch: `values` and `scales`
        # may also be rows on disk (`OnDiskRows`, for data too large for memory).
        index = torch.nonzero(self.fitted_labels[labels]).reshape(-1)
        labels, batches = labels[index], batches[index]
        n = len(index)
        # One streamed float64 computation for both kinds of rows, so that a fit from disk and
        # one in memory standardise by the same numbers, bit for bit.
        centre, spread = column_moments(values, index.cpu().numpy())
        self.centre.copy_(centre)
        self.spread.copy_(spread.clamp(min=1e-4) if n > 1 else self.spread)

        self._reset_velocity(seed)
        generator = torch.Generator(device=values.device).manual_seed(int(seed))
        steps_per_epoch = max(1, math.ceil(n / batch_size))
        self.requires_grad_(True)
        self.train()
        optimizer = torch.optim.AdamW(self.velocity.parameters(), lr=lr, weight_decay=1e-4)
        total_steps = max_epochs * steps_per_epoch
        # OneCycleLR needs at least two warm-up steps; a fit that short keeps a constant rate.
        schedule = (
            torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=lr, total_steps=total_steps, pct_start=max(0.05, 3 / total_steps)
            )
            if total_steps >= 8
            else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        )
        history = []
        # scvi-tools' bar, in `scvi.settings.progress_bar_style` (one update per epoch).
        epochs = track(range(max_epochs), description="Flow prior", disable=not progress)
        try:
            for _ in epochs:
                order = torch.randperm(n, generator=generator, device=values.device)
                total = 0.0
                for start in range(0, n, batch_size):
                    rows = order[start : start + batch_size]
                    target = values[index[rows]]
                    if scales is not None:
                        noise = torch.randn(target.shape, generator=generator, device=target.device)
                        target = target + scales[index[rows]] * noise
                    loss = self._flow_matching_loss(
                        (target - self.centre) / self.spread,
                        labels[rows],
                        batches[rows],
                        label_dropout,
                        generator,
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    total += float(loss.detach()) * len(rows)
                history.append(total / n)
                if hasattr(epochs, "set_postfix"):  # tqdm: the epoch's loss
                    epochs.set_postfix(loss=f"{history[-1]:.3g}", refresh=False)
        finally:
            self.requires_grad_(False)
            self.eval()
        return history

    def _reset_velocity(self, seed: int) -> None:
        """Start every fit from the same weights for a seed, whatever the global random state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for layer in self.velocity.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()

    def _flow_matching_loss(self, x1, labels, batches, label_dropout, generator):
        x0 = torch.randn(x1.shape, generator=generator, device=x1.device)
        t = torch.rand(len(x1), 1, generator=generator, device=x1.device)
        xt = (1.0 - t) * x0 + t * x1
        if label_dropout > 0:
            drop = torch.rand(len(x1), generator=generator, device=x1.device) < label_dropout
            labels = torch.where(drop, torch.full_like(labels, self.n_labels), labels)
            batches = torch.where(drop, torch.full_like(batches, self.n_batch), batches)
        predicted = self.velocity(xt, t, labels, batches)
        return ((predicted - (x1 - x0)) ** 2).sum(-1).mean()

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        batches: torch.Tensor,
        n_steps: int = DEFAULT_ODE_STEPS,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Draw one value per requested cell, ``(n, n_dims)``, from the global torch generator.

        Parameters
        ----------
        labels, batches
            Integer codes of each new cell.
        n_steps
            Fixed midpoint ODE steps (two velocity evaluations each).
        guidance
            Classifier-free guidance weight ``w``: 1 samples ``p(x | y, s)``, 0 ignores the
            condition, > 1 sharpens the condition.

        """
        check_sampling_settings(n_steps, guidance)
        labels, batches = labels.reshape(-1).long(), batches.reshape(-1).long()
        noise = torch.randn(len(labels), self.n_dims, device=self.centre.device)
        condition = self.velocity.embed_condition(labels, batches)
        unconditional = None
        if guidance != 1.0:
            none = self.velocity.embed_condition(
                torch.full((1,), self.n_labels, device=labels.device),
                torch.full((1,), self.n_batch, device=labels.device),
            )
        # Chunks of cells stay in cache through all steps (the field is memory-bound).
        parts = []
        for start in range(0, len(labels), _ODE_CHUNK):
            rows = slice(start, start + _ODE_CHUNK)
            if guidance != 1.0:
                unconditional = none.expand(len(noise[rows]), -1)
            parts.append(
                self._solve(noise[rows], condition[rows], unconditional, n_steps, guidance)
            )
        x = torch.cat(parts) if parts else noise
        return x * self.spread + self.centre

    def _solve(self, x, condition, unconditional, n_steps: int, guidance: float) -> torch.Tensor:
        """Fixed-step midpoint integration of the (guided) field from t = 0 to 1."""

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            time = torch.full((1, 1), t, device=x.device)
            conditional = self.velocity.field(x, time, condition)
            if unconditional is None:
                return conditional
            free = self.velocity.field(x, time, unconditional)
            return free + guidance * (conditional - free)

        step = 1.0 / n_steps
        for i in range(n_steps):  # ODE steps; every cell of the chunk moves at once
            t = i * step
            midpoint = x + 0.5 * step * velocity(x, t)
            x = x + step * velocity(midpoint, t + 0.5 * step)
        return x


def rare_labels(label_codes: Sequence[int], fitted: torch.Tensor) -> list[int]:
    """Requested label codes the flow was not fitted on."""
    requested = np.unique(np.asarray(label_codes, dtype=np.int64))
    fitted = fitted.cpu().numpy()
    return [int(code) for code in requested if not fitted[code]]
