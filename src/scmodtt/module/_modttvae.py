"""The MODTT variational autoencoder: modular encoders, token coupling, label-conditional prior."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scvi import REGISTRY_KEYS
from scvi.distributions import NegativeBinomial, ZeroInflatedNegativeBinomial
from scvi.module._constants import MODULE_KEYS
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal, kl_divergence

from ..nn import ModularDecoder, ModularEncoder, TokenAdapter, TokenCoupling
from ._likelihoods import FeatureLikelihood
from ._priors import (
    DEFAULT_ODE_STEPS,
    LIBRARY_STAT_KEYS,
    ConditionalFlowPrior,
    LabelGaussianPrior,
    LibraryGaussianPrior,
    library_statistics_torch,
)
from ._sampling import sample_negative_binomial
from ._transforms import clr, log1p_normalize, log_library, masked_clr, normalized_to_counts

ARCHITECTURES = ("modular", "flat")
PRIORS = ("flow", "gaussian")


class MODTTVAE(BaseModuleClass):
    """Conditional VAE of paired RNA and protein counts with modular, coupled encoders/decoders.

    Generative process for a cell with label ``y`` and batch ``s``::

        z ~ N(mu_y, sigma_y²)                  (N(0, I) without labels)
        h = coupling_dec(act(W [z, onehot(s)]))   (n_modules × module_dim tokens)
        x_rna ~ p(. | module decoders(h), library)
        x_adt ~ p(. | module decoders(h), library)

    The flat architecture replaces tokens and coupling by one hidden layer of width ``n_hidden``.

    Parameters
    ----------
    n_genes, n_proteins
        Features per modality.
    n_batch
        Batches (one-hot injected into the decoder).
    n_labels
        Labels (one prior Gaussian each when ``use_label_prior``).
    feature_index, module_index
        Module membership in coordinate form over the concatenated ``[genes, proteins]`` features
        (modular architecture only).
    n_modules
        Number of modules ``M`` (genes' and proteins' together).
    architecture
        ``"modular"`` or ``"flat"``.
    coupling
        ``"tt"`` or ``"dense"`` (modular architecture).
    module_dim
        Token size ``d_e`` per module.
    tt_rank
        Block-TT rank of the coupling.
    n_hidden
        Hidden width of the flat architecture.
    n_latent
        Latent dimension.
    gene_likelihood, protein_likelihood
        See :class:`~scmodtt.module._likelihoods.FeatureLikelihood`.
    dispersion
        ``"gene"`` or ``"gene-label"``
        (see :class:`~scmodtt.module._likelihoods.FeatureLikelihood`).
    use_label_prior
        Fit a Gaussian prior per label (moment matching of the label's posteriors during
        training) instead of ``N(0, I)``.
    balance_modalities
        Average each modality's negative log-likelihood over its features and weight the two
        modalities equally (rescaled to the total feature count), the paper's
        ``(MSE_RNA + MSE_ADT) / 2``; otherwise the log-likelihoods are summed over features.
    initial_output_bias
        ``{"rna": (n_genes,), "protein": (n_proteins,)}`` starting values of the first decoder
        output per feature (see :func:`~scmodtt.module._likelihoods.initial_output_bias`).
    library_stats
        Per-label mean and standard deviation of each of ``LIBRARY_STAT_KEYS``, shape
        ``(n_labels, 3, 2)``; the Gaussian library model of ``prior="gaussian"``.
    flow_n_hidden, flow_n_layers
        Width and depth of the velocity field of the conditional flow prior over
        ``(z, library statistics)`` (see :class:`~scmodtt.module._priors.ConditionalFlowPrior`),
        fitted after the autoencoder.
    protein_observed
        ``(n_batch, n_proteins)`` booleans: which ADTs each batch measured. Unmeasured ADTs, and
        every ADT of a cell with no ADT counts at all (an RNA-only cell), are left out of the
        protein likelihood and hidden from the encoder. ``None``: every ADT in every batch.
    protein_dropout
        Probability that training hides a cell's ADTs from the encoder (modality dropout), so that
        the encoder learns to place RNA-only cells; the likelihood still scores the hidden ADTs.
    adapter_rank
        Rank of a :class:`~scmodtt.nn.TokenAdapter` on the encoder's module tokens, applied to
        cells of the batches in ``adapted_batches`` (query mapping); 0: no adapter.

    """

    def __init__(
        self,
        n_genes: int,
        n_proteins: int,
        n_batch: int = 1,
        n_labels: int = 1,
        feature_index: np.ndarray | None = None,
        module_index: np.ndarray | None = None,
        n_modules: int = 0,
        architecture: Literal["modular", "flat"] = "modular",
        coupling: Literal["tt", "dense"] = "tt",
        module_dim: int = 8,
        tt_rank: int = 8,
        n_hidden: int = 22,
        n_latent: int = 32,
        gene_likelihood: str = "nb",
        protein_likelihood: str = "nb",
        use_label_prior: bool = True,
        balance_modalities: bool = False,
        dispersion: str = "gene",
        library_stats: np.ndarray | None = None,
        initial_output_bias: dict[str, np.ndarray] | None = None,
        flow_n_hidden: int = 128,
        flow_n_layers: int = 3,
        protein_observed: np.ndarray | None = None,
        protein_dropout: float = 0.0,
        adapter_rank: int = 0,
    ):
        super().__init__()
        if not 0.0 <= protein_dropout < 1.0:
            raise ValueError(f"`protein_dropout` must be in [0, 1), got {protein_dropout!r}.")
        if adapter_rank and architecture != "modular":
            raise ValueError(
                "Adapters act on module tokens: use `architecture='modular'` or `adapter_rank=0`."
            )
        self.protein_dropout = protein_dropout
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"`architecture` must be one of {ARCHITECTURES}, got {architecture!r}."
            )
        self.n_genes, self.n_proteins = n_genes, n_proteins
        self.n_batch, self.n_labels, self.n_latent = n_batch, n_labels, n_latent
        self.architecture = architecture
        self.use_label_prior = use_label_prior
        self.balance_modalities = balance_modalities
        self.gene_likelihood = FeatureLikelihood(gene_likelihood, n_genes, dispersion, n_labels)
        self.protein_likelihood = FeatureLikelihood(
            protein_likelihood, n_proteins, dispersion, n_labels
        )
        n_features = n_genes + n_proteins
        decoder_input = n_latent + n_batch

        if architecture == "modular":
            feature_index = torch.as_tensor(np.asarray(feature_index), dtype=torch.long)
            module_index = torch.as_tensor(np.asarray(module_index), dtype=torch.long)
            self.n_modules, self.module_dim = n_modules, module_dim
            width = n_modules * module_dim
            self.module_encoder = ModularEncoder(
                feature_index, module_index, n_features, n_modules, module_dim
            )
            self.encoder_coupling = TokenCoupling(n_modules, module_dim, coupling, tt_rank)
            self.encoder_head = nn.Linear(width, 2 * n_latent)
            self.decoder_input = nn.Linear(decoder_input, width)
            self.decoder_coupling = TokenCoupling(n_modules, module_dim, coupling, tt_rank)
            is_gene = feature_index < n_genes
            self.gene_decoder = ModularDecoder(
                feature_index[is_gene],
                module_index[is_gene],
                n_genes,
                n_modules,
                module_dim,
                self.gene_likelihood.n_outputs,
            )
            self.protein_decoder = ModularDecoder(
                feature_index[~is_gene] - n_genes,
                module_index[~is_gene],
                n_proteins,
                n_modules,
                module_dim,
                self.protein_likelihood.n_outputs,
            )
        else:
            self.encoder_body = nn.Sequential(nn.Linear(n_features, n_hidden), nn.ReLU())
            self.encoder_head = nn.Linear(n_hidden, 2 * n_latent)
            self.decoder_body = nn.Sequential(nn.Linear(decoder_input, n_hidden), nn.ReLU())
            self.gene_decoder = nn.Linear(n_hidden, n_genes * self.gene_likelihood.n_outputs)
            self.protein_decoder = nn.Linear(
                n_hidden, n_proteins * self.protein_likelihood.n_outputs
            )

        if initial_output_bias is not None:
            self._set_output_bias(initial_output_bias)

        observed = (
            torch.ones(n_batch, n_proteins, dtype=torch.bool)
            if protein_observed is None
            else torch.as_tensor(np.asarray(protein_observed), dtype=torch.bool)
        )
        self.register_buffer("protein_observed", observed)
        # Query mapping (see `MODTT.load_query_data`): labels the reference was trained on, batches
        # whose cells go through the adapter, and priors frozen at the reference's.
        self.register_buffer("known_labels", torch.ones(n_labels, dtype=torch.bool))
        self.register_buffer("adapted_batches", torch.zeros(n_batch, dtype=torch.bool))
        self.register_buffer("priors_frozen", torch.tensor(False))
        # Batches with training cells; a query model trains the decoder columns of the others.
        self.register_buffer("trained_batches", torch.ones(n_batch, dtype=torch.bool))
        self.token_adapter = (
            TokenAdapter(n_modules, module_dim, adapter_rank) if adapter_rank else None
        )

        # Without labels the label prior stays N(0, I).
        self.label_prior = LabelGaussianPrior(n_labels if use_label_prior else 1, n_latent)
        self.library_prior = (
            LibraryGaussianPrior(library_stats)
            if library_stats is not None
            else LibraryGaussianPrior.standard(n_labels)
        )
        self.flow_prior = ConditionalFlowPrior(
            n_latent + len(LIBRARY_STAT_KEYS), n_labels, n_batch, flow_n_hidden, flow_n_layers
        )

    @torch.no_grad()
    def _set_output_bias(self, initial_output_bias: dict[str, np.ndarray]) -> None:
        """Start the first decoder output of each feature at the data's mean expression."""
        for decoder, key, n_features in (
            (self.gene_decoder, "rna", self.n_genes),
            (self.protein_decoder, "protein", self.n_proteins),
        ):
            values = torch.as_tensor(np.asarray(initial_output_bias[key]), dtype=torch.float32)
            # ModularDecoder keeps its bias as (outputs, features); the flat decoder's Linear
            # lays the same (outputs, features) grid out flat.
            decoder.bias.view(-1, n_features)[0] = values

    # ------------------------------------------------------------------ encoder / decoder bodies
    def protein_mask(self, y: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor | None:
        """Which ADT counts were measured, ``(n, n_proteins)``; ``None`` when all were."""
        measured = self.protein_observed[batch_index.reshape(-1).long()]
        mask = measured & (y.sum(-1, keepdim=True) > 0)
        return None if bool(mask.all()) else mask

    def _encoder_protein_mask(self, y, batch_index) -> torch.Tensor | None:
        """The ADTs the encoder sees: measured ones, minus a cell's ADTs under modality dropout."""
        mask = self.protein_mask(y, batch_index)
        if self.training and self.protein_dropout > 0:
            kept = torch.rand(y.shape[0], 1, device=y.device) >= self.protein_dropout
            mask = kept if mask is None else mask & kept
        return mask

    def protein_libraries(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log ADT library and CLR centre ``(n, 1)`` each, to decode a cell's proteins at.

        A cell's own, or for a cell with no ADT counts (RNA-only) the reference cells' mean over
        labels, so that imputed proteins come out on the scale of measured ones.
        """
        library, centre = log_library(y), clr(y)[1]
        without = y.sum(-1, keepdim=True) == 0
        if bool(without.any()):
            stats = self.library_prior.stats[self.known_labels]
            library = torch.where(without, stats[:, 1, 0].mean(), library)
            centre = torch.where(without, stats[:, 2, 0].mean(), centre)
        return library, centre

    def _normalized_inputs(self, x, y, protein_mask=None) -> torch.Tensor:
        protein = clr(y)[0] if protein_mask is None else masked_clr(y, protein_mask)
        return torch.cat([log1p_normalize(x), protein], dim=-1)

    def encode_tokens(self, x, y, batch_index=None, protein_mask=None) -> torch.Tensor:
        """Per-module embeddings ``(n, M, d_e)`` before coupling (modular architecture).

        Unmeasured ADTs (``protein_mask``) are hidden; cells of adapted (query) batches go through
        the token adapter.
        """
        tokens = torch.relu(self.module_encoder(self._normalized_inputs(x, y, protein_mask)))
        if self.token_adapter is not None and batch_index is not None:
            gate = self.adapted_batches[batch_index.reshape(-1).long()]
            tokens = self.token_adapter(tokens, gate)
        return tokens

    def _encode(self, x, y, batch_index=None, protein_mask=None) -> torch.Tensor:
        if self.architecture == "modular":
            tokens = self.encode_tokens(x, y, batch_index, protein_mask)
            tokens = torch.relu(self.encoder_coupling(tokens))
            return self.encoder_head(tokens.flatten(1))
        inputs = self._normalized_inputs(x, y, protein_mask)
        return self.encoder_head(self.encoder_body(inputs))

    def _decode(
        self, z: torch.Tensor, batch_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = nn.functional.one_hot(batch_index.reshape(-1).long(), self.n_batch).to(z.dtype)
        decoder_input = torch.cat([z, batch], dim=-1)
        if self.architecture == "modular":
            tokens = torch.relu(self.decoder_input(decoder_input)).reshape(
                -1, self.n_modules, self.module_dim
            )
            tokens = torch.relu(self.decoder_coupling(tokens))
            return self.gene_decoder(tokens), self.protein_decoder(tokens)
        hidden = self.decoder_body(decoder_input)
        n = z.shape[0]
        return (
            self.gene_decoder(hidden).reshape(n, self.gene_likelihood.n_outputs, self.n_genes),
            self.protein_decoder(hidden).reshape(
                n, self.protein_likelihood.n_outputs, self.n_proteins
            ),
        )

    def prior(self, label_index: torch.Tensor | None, n: int) -> Normal:
        """``p(z | y)`` for each cell (the same ``N(0, I)`` for all without a label prior)."""
        if self.use_label_prior:
            index = label_index.reshape(-1).long()
        else:
            index = torch.zeros(n, dtype=torch.long, device=self.label_prior.mean.device)
        return self.label_prior(index)

    # ------------------------------------------------------------------ scvi-tools pipeline
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {
            "x": tensors[REGISTRY_KEYS.X_KEY],
            "y": tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
        }

    def _get_generative_input(self, tensors: dict, inference_outputs: dict, **kwargs) -> dict:
        return {
            "z": inference_outputs[MODULE_KEYS.Z_KEY],
            "rna_log_library": inference_outputs["rna_log_library"],
            "protein_log_library": inference_outputs["protein_log_library"],
            "batch_index": tensors[REGISTRY_KEYS.BATCH_KEY],
            "label_index": tensors[REGISTRY_KEYS.LABELS_KEY],
        }

    @auto_move_data
    def inference(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_index: torch.Tensor | None = None,
        n_samples: int = 1,
    ) -> dict:
        """Posterior ``q(z | x, y)``, a sample ``z`` and the observed library sizes.

        ``batch_index`` tells which ADTs each cell's batch measured (and which cells the query
        adapter acts on); ``None`` treats every ADT as measured.
        """
        protein_mask = None if batch_index is None else self._encoder_protein_mask(y, batch_index)
        z_mean, z_log_var = self._encode(x, y, batch_index, protein_mask).chunk(2, dim=-1)
        qz = Normal(z_mean, torch.exp(0.5 * z_log_var.clamp(-12.0, 12.0)) + 1e-4)
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {
            MODULE_KEYS.Z_KEY: z,
            MODULE_KEYS.QZ_KEY: qz,
            "rna_log_library": log_library(x),
            "protein_log_library": log_library(y),
        }

    @auto_move_data
    def generative(
        self,
        z: torch.Tensor,
        rna_log_library: torch.Tensor,
        protein_log_library: torch.Tensor,
        batch_index: torch.Tensor,
        label_index: torch.Tensor | None = None,
    ) -> dict:
        """Likelihoods ``p(x_rna | z)`` and ``p(x_adt | z)`` for the given batch and libraries.

        ``label_index`` selects the dispersions of ``dispersion="gene-label"``.
        """
        gene_outputs, protein_outputs = self._decode(z, batch_index)
        return {
            MODULE_KEYS.PX_KEY: self.gene_likelihood.distribution(
                gene_outputs, rna_log_library, label_index
            ),
            "py": self.protein_likelihood.distribution(
                protein_outputs, protein_log_library, label_index
            ),
        }

    def _observed_values(self, tensors: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Data on the scale each likelihood models: counts, or normalized values for ``normal``."""
        x, y = tensors[REGISTRY_KEYS.X_KEY], tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY]
        rna = x if self.gene_likelihood.is_count else log1p_normalize(x)
        protein = y if self.protein_likelihood.is_count else clr(y)[0]
        return rna, protein

    def loss(
        self,
        tensors: dict,
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Negative ELBO: reconstruction of both modalities plus ``KL(q(z|x) || p(z|y))``."""
        rna, protein = self._observed_values(tensors)
        rna_nll = -generative_outputs[MODULE_KEYS.PX_KEY].log_prob(rna)
        protein_nll = -generative_outputs["py"].log_prob(protein)
        mask = self.protein_mask(
            tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY], tensors[REGISTRY_KEYS.BATCH_KEY]
        )
        if mask is not None:  # unmeasured ADTs carry no likelihood
            protein_nll = protein_nll * mask
        if self.balance_modalities:
            scale = (self.n_genes + self.n_proteins) / 2.0
            n_measured = self.n_proteins if mask is None else mask.sum(-1).clamp(min=1)
            rna_loss = scale * rna_nll.mean(-1)
            protein_loss = scale * protein_nll.sum(-1) / n_measured
        else:
            rna_loss, protein_loss = rna_nll.sum(-1), protein_nll.sum(-1)
        qz = inference_outputs[MODULE_KEYS.QZ_KEY]
        labels = self._prior_labels(qz, tensors[REGISTRY_KEYS.LABELS_KEY])
        if self.training and self.use_label_prior and not bool(self.priors_frozen):
            known = self.known_labels[tensors[REGISTRY_KEYS.LABELS_KEY].reshape(-1).long()]
            self.label_prior.update(Normal(qz.loc[known], qz.scale[known]), labels[known])
        pz = self.prior(labels, qz.loc.shape[0])
        kl_z = kl_divergence(qz, pz).sum(-1)
        loss = torch.mean(rna_loss + protein_loss + kl_weight * kl_z)
        return LossOutput(
            loss=loss,
            reconstruction_loss={
                "reconstruction_loss_rna": rna_loss,
                "reconstruction_loss_protein": protein_loss,
            },
            kl_local={MODULE_KEYS.KL_Z_KEY: kl_z},
        )

    def _prior_labels(self, qz: Normal, label_index: torch.Tensor) -> torch.Tensor:
        """Label codes for the KL term: labels unknown to the reference take their closest prior.

        A query cell whose label the reference never saw (or an unlabelled one) is scored against
        the known label's Gaussian under which its posterior mean is most likely; its own label
        code is kept unchanged everywhere else.
        """
        labels = label_index.reshape(-1).long()
        if not self.use_label_prior:
            return labels
        known = self.known_labels[labels]
        if bool(known.all()):
            return labels
        prior = self.label_prior
        log_density = Normal(prior.mean, prior.log_scale.exp()).log_prob(qz.loc[:, None]).sum(-1)
        log_density = log_density.masked_fill(~self.known_labels, -torch.inf)
        return torch.where(known, labels, log_density.argmax(-1))

    # ------------------------------------------------------------------ generation
    def library_statistics(self, tensors: dict) -> torch.Tensor:
        """``LIBRARY_STAT_KEYS`` of observed cells, ``(n, 3)``: what the flow prior models."""
        return library_statistics_torch(
            tensors[REGISTRY_KEYS.X_KEY], tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY]
        )

    @torch.no_grad()
    def draw_cell_states(
        self,
        label_index: torch.Tensor,
        batch_index: torch.Tensor,
        prior: str = "flow",
        n_steps: int = DEFAULT_ODE_STEPS,
        guidance: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent codes ``(n, n_latent)`` and library statistics ``(n, 3)`` of new cells.

        ``prior="flow"`` draws both jointly from the conditional flow given label and batch;
        ``"gaussian"`` draws ``z`` from the label's Gaussian and the library statistics
        independently from the label's log-normal fits. Cells of labels the flow was not fitted on
        (too few cells) always take the Gaussian route.
        """
        if prior not in PRIORS:
            raise ValueError(f"`prior` must be one of {PRIORS}, got {prior!r}.")
        label_index = label_index.reshape(-1).long()
        on_flow = (
            self.flow_prior.fitted_labels[label_index]
            if prior == "flow"
            else torch.zeros_like(label_index, dtype=torch.bool)
        )
        z = torch.empty(len(label_index), self.n_latent, device=label_index.device)
        libraries = torch.empty(len(label_index), len(LIBRARY_STAT_KEYS), device=z.device)
        if on_flow.any():
            drawn = self.flow_prior.sample(
                label_index[on_flow], batch_index.reshape(-1)[on_flow], n_steps, guidance
            )
            z[on_flow], libraries[on_flow] = drawn.split([self.n_latent, libraries.shape[1]], -1)
        if not on_flow.all():  # the Gaussian route: `prior="gaussian"` or labels the flow lacks
            gaussian = label_index[~on_flow]
            prior_index = gaussian if self.use_label_prior else torch.zeros_like(gaussian)
            z[~on_flow] = self.label_prior(prior_index).sample()
            libraries[~on_flow] = self.library_prior(gaussian)
        return z, libraries

    @torch.inference_mode()
    def sample_counts(
        self,
        z: torch.Tensor,
        batch_index: torch.Tensor,
        library_stats: torch.Tensor,
        label_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode latent codes of new cells into RNA and protein counts.

        ``library_stats`` ``(n, 3)`` holds each new cell's ``LIBRARY_STAT_KEYS`` (the CLR
        centre matters only for the Gaussian likelihood's return to counts).
        """
        rna_log_library, protein_log_library, protein_centre = library_stats.split(1, dim=-1)
        generative_outputs = self.generative(
            z, rna_log_library, protein_log_library, batch_index, label_index
        )
        return self._sample_observations(generative_outputs, rna_log_library, protein_centre)

    def _sample_observations(
        self, generative_outputs: dict, rna_log_library: torch.Tensor, protein_centre: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rna = _draw(generative_outputs[MODULE_KEYS.PX_KEY])
        protein = _draw(generative_outputs["py"])
        rna_counts, protein_counts = normalized_to_counts(
            rna, protein, rna_log_library, protein_centre
        )
        if self.gene_likelihood.is_count:
            rna_counts = rna
        if self.protein_likelihood.is_count:
            protein_counts = protein
        return rna_counts, protein_counts

    @torch.inference_mode()
    def sample(self, tensors: dict, n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior predictive counts for observed cells, ``n_samples`` draws each."""
        inference_outputs = self.inference(
            **self._get_inference_input(tensors), n_samples=n_samples
        )
        z = inference_outputs[MODULE_KEYS.Z_KEY]
        samples = []
        for z_draw in z if n_samples > 1 else [z]:
            generative_outputs = self.generative(
                z_draw,
                inference_outputs["rna_log_library"],
                inference_outputs["protein_log_library"],
                tensors[REGISTRY_KEYS.BATCH_KEY],
                tensors[REGISTRY_KEYS.LABELS_KEY],
            )
            centre = clr(tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY])[1]
            samples.append(
                self._sample_observations(
                    generative_outputs, inference_outputs["rna_log_library"], centre
                )
            )
        rna = torch.stack([s[0] for s in samples], dim=-1)
        protein = torch.stack([s[1] for s in samples], dim=-1)
        return rna, protein


def _draw(distribution: torch.distributions.Distribution) -> torch.Tensor:
    """One draw per entry; NB and ZINB counts at a cost that follows the non-zero draws."""
    if isinstance(distribution, ZeroInflatedNegativeBinomial):
        return sample_negative_binomial(distribution.mu, distribution.theta, distribution.zi_logits)
    if isinstance(distribution, NegativeBinomial):
        return sample_negative_binomial(distribution.mu, distribution.theta)
    return distribution.sample()
