"""Where do latent models lose within-type RNA–protein correlation (cond_r)?

Trains MODTT-tt exactly as the published REAP-seq benchmark does (same split, features, modules,
early stopping unless ``--max-epochs``) and scores cond_r against the real test cells for
synthetic sets that differ in one ingredient at a time:

- ``oracle``: real training cells (the ceiling on these splits);
- ``reconstruction``: every training cell decoded from its own posterior mean with its own
  observed RNA and protein library sizes, counts drawn from the likelihoods;
- ``reconstruction, libraries drawn per label``: the same latent codes, libraries drawn
  independently per label (what ``MODTT.sample(prior="gaussian")`` does);
- ``prior z, observed libraries``: ``z`` from the label prior, libraries of random training cells
  of the label, RNA and protein together;
- ``native``: ``MODTT.sample`` (``z`` and libraries from its conditional flow prior);
- ``reconstruction, decoder means``: the decoded means without count noise, and each modality's
  count noise alone;
- with ``--flow-variants``: ``MODTT.sample`` with other sampling seeds (the same flow), with the
  flow refitted under other seeds, and with the flow fitted to the posterior means only, to tell
  the sampling noise of cond_r from the flow fit's.

Usage (REAP-seq seeds 0-2, about 3 CPU minutes per seed, one thread)::

    .venv/bin/python scripts/diagnose_cond_r.py --seeds 3 --out results/diagnose_cond_r.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import scvi
import torch

from scmodtt import metrics
from scmodtt._normalization import _dense_float
from scmodtt.benchmark import _protocols as protocols
from scmodtt.benchmark import _run, _seed
from scmodtt.benchmark._timing import EpochTimer
from scmodtt.benchmark._zoo import PROTEIN_MOD, RNA_MOD, build_model
from scmodtt.module._transforms import log_library

LABELS = "cell_type"


@torch.inference_mode()
def _decode(model, z, rna_log_library, protein_log_library, protein_centre, noise=True):
    module = model.module
    batch = torch.zeros(len(z), 1, dtype=torch.long)
    outputs = module.generative(z, rna_log_library, protein_log_library, batch)
    if noise:
        return module._sample_observations(outputs, rna_log_library, protein_centre)
    return outputs["px"].mean, outputs["py"].mean


def diagnose(seed: int, max_epochs: int | None = None, flow_variants: int = 0) -> pd.DataFrame:
    scvi.settings.seed = seed
    context = _seed.reapseq_context(seed, LABELS)
    fit = context.fit.copy()
    _seed.use_modules(fit, "ward")
    model = build_model("modtt-tt", fit, labels_key=LABELS)
    _run._train(model, _run.BenchmarkModel.parse("modtt-tt"), context, max_epochs, EpochTimer())
    model.module.eval()

    train = context.train
    labels = train.obs[LABELS].astype(str).to_numpy()
    rna, protein = (
        torch.as_tensor(_dense_float(train[modality].X), dtype=torch.float32)
        for modality in (RNA_MOD, PROTEIN_MOD)
    )
    rna_lib, protein_lib = log_library(rna), log_library(protein)
    z_mean = torch.as_tensor(
        model.get_latent_representation(indices=context.split_in_fit.train), dtype=torch.float32
    )
    codes = torch.as_tensor(model._codes_of(labels))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # Log RNA and ADT libraries and CLR centre drawn per label (MODTT's prior="gaussian" rule).
    drawn = model.module.library_prior(codes).split(1, dim=-1)

    def wrap(counts):
        rna_values, protein_values = (c.numpy() for c in counts)
        return protocols.synthetic_mudata(rna_values, protein_values, labels, train, LABELS)

    # Libraries of a random training cell of the same label, RNA and protein from the same cell.
    donors = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        donors[members] = rng.choice(members, size=len(members), replace=True)
    prior = model.module.prior(codes, len(codes))
    z_prior = prior.loc + prior.scale * torch.randn_like(prior.loc)
    counts = _decode(model, z_mean, rna_lib, protein_lib, protein_lib)
    means = _decode(model, z_mean, rna_lib, protein_lib, protein_lib, noise=False)
    sets = {
        "oracle (real training cells)": train,
        "reconstruction": wrap(counts),
        "reconstruction, libraries drawn per label": wrap(_decode(model, z_mean, *drawn)),
        "prior z, observed libraries": wrap(
            _decode(model, z_prior, rna_lib[donors], protein_lib[donors], protein_lib[donors])
        ),
        "native (MODTT.sample, flow prior)": model.sample(
            labels=context.label_counts.to_dict(), seed=seed
        ),
        "native (MODTT.sample, Gaussian prior)": model.sample(
            labels=context.label_counts.to_dict(), seed=seed, prior="gaussian"
        ),
        "reconstruction, decoder means": wrap(means),
        "reconstruction, RNA counts drawn, protein means": wrap((counts[0], means[1])),
        "reconstruction, RNA means, protein counts drawn": wrap((means[0], counts[1])),
    }
    wanted = context.label_counts.to_dict()
    for k in range(1, flow_variants + 1):
        sets[f"native, sampling seed +{k} (same flow)"] = model.sample(labels=wanted, seed=seed + k)
    for k in range(1, flow_variants + 1):
        model.fit_flow_prior(seed=seed + 100 * k, progress=False)
        sets[f"native, flow refitted with seed +{100 * k}"] = model.sample(labels=wanted, seed=seed)
    if flow_variants:
        model.fit_flow_prior(seed=seed, posterior="means", progress=False)
        sets["native, flow fitted to posterior means"] = model.sample(labels=wanted, seed=seed)
    rows = []
    for name, synthetic in sets.items():
        result = metrics.cond_r(context.test, synthetic, context.pairs, labels_key=LABELS)
        interact = metrics.interact_r(context.test, synthetic, context.pairs, labels_key=LABELS)
        rows.append(
            {
                "seed": seed,
                "synthetic set": name,
                "cond_r": result.value,
                "interact_r": interact.value,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, help="default: early stopping, as the benchmark")
    parser.add_argument(
        "--flow-variants", type=int, default=0, help="other sampling and flow-fit seeds to score"
    )
    parser.add_argument("--out", type=Path, default=Path("results/diagnose_cond_r.csv"))
    args = parser.parse_args()
    table = pd.concat(
        [diagnose(seed, args.max_epochs, args.flow_variants) for seed in range(args.seeds)],
        ignore_index=True,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    summary = table.groupby("synthetic set", sort=False)[["cond_r", "interact_r"]].agg(
        ["mean", "std"]
    )
    print(summary.round(3).to_markdown())


if __name__ == "__main__":
    main()
