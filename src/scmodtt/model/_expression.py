"""What a trained MODTT says about observed cells: module tokens, denoised expression, and
posterior predictive counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.module._constants import MODULE_KEYS

from ..module._transforms import log_library


class ExpressionMixin:
    """Per-cell outputs of a trained :class:`~scmodtt.MODTT` on registered data."""

    @torch.inference_mode()
    def get_module_embeddings(
        self,
        adata: MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Per-cell module embeddings: the ``(n_modules × module_dim)`` token of each module.

        These are the outputs of the module encoders before coupling; their module order is
        :attr:`module_names`.

        Returns
        -------
        Array of shape ``(n_cells, n_modules, module_dim)``.

        Examples
        --------
        >>> tokens = model.get_module_embeddings()
        >>> norms = pd.DataFrame(np.linalg.norm(tokens, axis=-1), columns=model.module_names)

        """
        if self.module.architecture != "modular":
            raise ValueError("The flat architecture has no modules; use `architecture='modular'`.")
        dataloader = self._make_data_loader(
            adata=self._validate_anndata(adata), indices=indices, batch_size=batch_size
        )
        tokens = [
            self.module.encode_tokens(**self.module._get_inference_input(tensors)).cpu()
            for tensors in dataloader
        ]
        return torch.cat(tokens).numpy()

    @torch.inference_mode()
    def get_normalized_expression(
        self,
        adata: MuData | None = None,
        indices: Sequence[int] | None = None,
        transform_batch: str | int | Sequence[str | int] | None = None,
        library_size: float = 1e4,
        n_samples: int = 1,
        batch_size: int | None = None,
        return_numpy: bool = False,
    ) -> tuple[pd.DataFrame | np.ndarray, pd.DataFrame | np.ndarray]:
        """Denoised RNA and protein expression.

        RNA is the expected expression scaled to ``library_size`` counts per cell. Protein is the
        expected count at the cell's observed protein library (for ``"nbmixture"`` the foreground
        signal with background removed, as in totalVI). ADTs a cell's batch did not measure, and
        every ADT of an RNA-only cell, are imputed: decoded from the cell's latent code, an
        RNA-only cell's at the reference cells' mean protein library.

        Parameters
        ----------
        adata
            MuData registered like the training data (default: the training data).
        indices
            Cells to use (default: all).
        transform_batch
            Batch category (or categories, averaged) to decode every cell in, for batch-corrected
            counterfactual expression. ``None`` uses each cell's own batch.
        library_size
            RNA counts per cell of the output.
        n_samples
            Posterior samples of ``z`` to average (1 uses the posterior mean).
        batch_size
            Cells per mini-batch.
        return_numpy
            Return arrays instead of DataFrames.

        Returns
        -------
        ``(rna, protein)``, each cells × features.

        """
        adata = self._validate_anndata(adata)
        batch_codes = self._batch_codes_for(transform_batch)
        rna_parts, protein_parts = [], []
        for tensors in self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size):
            inference_outputs = self.module.inference(
                **self.module._get_inference_input(tensors), n_samples=n_samples
            )
            z = (
                inference_outputs[MODULE_KEYS.QZ_KEY].loc
                if n_samples == 1
                else inference_outputs[MODULE_KEYS.Z_KEY]
            )
            rna_sum, protein_sum = 0.0, 0.0
            for code in batch_codes:
                batch_index = (
                    tensors[REGISTRY_KEYS.BATCH_KEY]
                    if code is None
                    else torch.full_like(tensors[REGISTRY_KEYS.BATCH_KEY], code)
                )
                rna, protein = self._expected_expression(z, tensors, batch_index, library_size)
                rna_sum, protein_sum = rna_sum + rna, protein_sum + protein
            rna_parts.append((rna_sum / len(batch_codes)).cpu())
            protein_parts.append((protein_sum / len(batch_codes)).cpu())
        rna = torch.cat(rna_parts).numpy()
        protein = torch.cat(protein_parts).numpy()
        if return_numpy:
            return rna, protein
        rna_mod, protein_mod = self._modality_names()
        obs_names = adata.obs_names if indices is None else adata.obs_names[np.asarray(indices)]
        return (
            pd.DataFrame(rna, index=obs_names, columns=adata[rna_mod].var_names),
            pd.DataFrame(protein, index=obs_names, columns=adata[protein_mod].var_names),
        )

    def _expected_expression(self, z, tensors, batch_index, library_size):
        """Expected RNA (per ``library_size``) and protein counts.

        Averages over leading sample dims.
        """
        x, y = tensors[REGISTRY_KEYS.X_KEY], tensors[REGISTRY_KEYS.PROTEIN_EXP_KEY]
        rna_library = torch.full_like(log_library(x), float(np.log(library_size)))
        protein_library, protein_centre = self.module.protein_libraries(y)
        z_draws = z if z.ndim == 3 else z.unsqueeze(0)
        rna_total, protein_total = 0.0, 0.0
        for z_draw in z_draws:
            outputs = self.module.generative(
                z_draw, rna_library, protein_library, batch_index, tensors[REGISTRY_KEYS.LABELS_KEY]
            )
            rna = self.module.gene_likelihood.expected_value(outputs[MODULE_KEYS.PX_KEY])
            protein = self.module.protein_likelihood.expected_value(outputs["py"])
            if not self.module.gene_likelihood.is_count:
                rna = torch.expm1(rna).clamp(min=0.0) * library_size / 1e4
            if not self.module.protein_likelihood.is_count:
                protein = torch.expm1(protein + protein_centre).clamp(min=0.0)
            rna_total, protein_total = rna_total + rna, protein_total + protein
        return rna_total / len(z_draws), protein_total / len(z_draws)

    @torch.inference_mode()
    def posterior_predictive_sample(
        self,
        adata: MuData | None = None,
        indices: Sequence[int] | None = None,
        n_samples: int = 1,
        batch_size: int | None = None,
        gene_list: Sequence[str] | None = None,
        protein_list: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        r"""Draw counts from the posterior predictive :math:`p(\hat{x}, \hat{y} \mid x, y)`.

        For each cell, ``z`` is drawn from its posterior ``q(z | x, y)``, decoded at the cell's
        own batch, label and observed libraries, and RNA and ADT counts are drawn from the
        model's likelihoods. The output follows
        :meth:`scvi.model.TOTALVI.posterior_predictive_sample`: one array per modality, keyed by
        the MuData modality names, so that :class:`scvi.criticism.PosteriorPredictiveCheck` runs
        on either modality (its ``modality`` argument picks the entry).

        Parameters
        ----------
        adata
            MuData registered like the training data (default: the training data).
        indices
            Cells to use (default: all).
        n_samples
            Posterior predictive draws per cell.
        batch_size
            Cells per mini-batch (default: ``scvi.settings.batch_size``).
        gene_list
            Genes to keep (default: all), in the order of the registered genes.
        protein_list
            Proteins to keep (default: all), in the order of the registered proteins.

        Returns
        -------
        ``{rna_modality: rna, protein_modality: protein}``: count arrays of shape
        ``(n_cells, n_features)`` when ``n_samples == 1``, else
        ``(n_cells, n_features, n_samples)``, RNA first.

        Examples
        --------
        >>> draws = model.posterior_predictive_sample(indices=np.arange(100), n_samples=10)
        >>> rna, protein = draws.values()  # (100, n_genes, 10) and (100, n_proteins, 10)

        Posterior predictive checks of each modality with scvi-tools:

        >>> from scvi.criticism import PosteriorPredictiveCheck
        >>> ppc = PosteriorPredictiveCheck(mdata, {"MODTT": model}, n_samples=10, modality="prot")
        >>> ppc.coefficient_of_variation("features")
        >>> ppc.metrics["cv_cell"]

        """
        adata = self._validate_anndata(adata)
        rna_mod, protein_mod = self._modality_names()
        gene_mask = _feature_mask(adata[rna_mod].var_names, gene_list, "gene_list", rna_mod)
        protein_mask = _feature_mask(
            adata[protein_mod].var_names, protein_list, "protein_list", protein_mod
        )
        rna_parts, protein_parts = [], []
        for tensors in self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size):
            rna, protein = self.module.sample(tensors, n_samples=n_samples)
            rna_parts.append(rna[:, gene_mask].cpu())
            protein_parts.append(protein[:, protein_mask].cpu())
        rna, protein = torch.cat(rna_parts).numpy(), torch.cat(protein_parts).numpy()
        if n_samples == 1:
            rna, protein = rna[..., 0], protein[..., 0]
        return {rna_mod: rna, protein_mod: protein}


def _feature_mask(
    var_names: pd.Index, names: Sequence[str] | None, argument: str, mod_name: str
) -> slice | np.ndarray:
    """Positions of ``names`` among ``var_names`` (all features for ``None``)."""
    if names is None:
        return slice(None)
    mask = var_names.isin(list(names))
    if not mask.any():
        raise ValueError(f"None of `{argument}` is among the features of modality {mod_name!r}.")
    return np.flatnonzero(mask)
