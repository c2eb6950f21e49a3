"""Where ``MODTT.sample`` spends its time: the flow's ODE, decoding, count draws, assembly.

Trains MODTT (defaults, Tensor-Train coupling) for a few epochs on the bundled REAP-seq data as the
speed benchmark prepares it (2,000 HVGs + 48 ADTs, Ward modules 50 RNA + 20 ADT), fits the flow
prior for one epoch (its cost does not depend on its quality) and times, best of three, in cells
per second: the ODE at several step counts, the decoder's forward pass, the RNA and ADT count
draws, ``sample_counts`` (decoder + draws) and the whole ``sample`` call, at 20 ODE steps and at
the default 8 (it adds CSR assembly, the normalized layers and the MuData).

Usage (one thread)::

    .venv/bin/python scripts/profile_sample.py --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mudata
import scvi
import torch

import scmodtt
from scmodtt.benchmark._speed import prepare_speed_data
from scmodtt.benchmark._zoo import build_model
from scmodtt.module._modttvae import _draw
from scmodtt.module._priors import DEFAULT_ODE_STEPS


def cells_per_second(function, n_cells: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return n_cells / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mudata.set_options(pull_on_update=False)
    scvi.settings.seed = 0
    with tempfile.TemporaryDirectory() as folder:
        data = scmodtt.datasets.reapseq_pbmc()
        path = prepare_speed_data(data, "hvg2000", Path(folder) / "speed.h5mu")
        mdata = mudata.read_h5mu(path)
    model = build_model("modtt-tt", mdata, labels_key="cell_type")
    model.train(
        max_epochs=args.epochs, early_stopping=False, enable_progress_bar=False, flow_prior=False
    )
    model.fit_flow_prior(max_epochs=1, progress=False)
    module, n = model.module, args.cells
    labels = torch.arange(n) % len(model._known_labels())
    batches = torch.zeros(n, 1, dtype=torch.long)
    flow = module.flow_prior
    rates = {
        f"ODE, {steps} midpoint steps": cells_per_second(
            lambda steps=steps: flow.sample(labels, batches, steps), n
        )
        for steps in (4, 8, 20)
    }
    chunk = 1024  # `sample`'s default decoding batch
    z, libraries = flow.sample(labels[:chunk], batches[:chunk]).split([module.n_latent, 3], -1)
    rna_library, protein_library, _ = libraries.split(1, -1)
    with torch.inference_mode():
        outputs = module.generative(
            z, rna_library, protein_library, batches[:chunk], labels[:chunk, None]
        )
        rates["decoder forward"] = cells_per_second(
            lambda: module.generative(
                z, rna_library, protein_library, batches[:chunk], labels[:chunk, None]
            ),
            chunk,
        )
        rates["RNA count draws"] = cells_per_second(lambda: _draw(outputs["px"]), chunk)
        rates["ADT count draws"] = cells_per_second(lambda: _draw(outputs["py"]), chunk)
        rates["sample_counts (decoder + draws)"] = cells_per_second(
            lambda: module.sample_counts(z, batches[:chunk], libraries, labels[:chunk, None]), chunk
        )
    per_label = n // len(model._known_labels())
    n_sampled = per_label * len(model._known_labels())
    for steps in (20, DEFAULT_ODE_STEPS):
        rates[f"MODTT.sample, {steps} ODE steps"] = cells_per_second(
            lambda steps=steps: model.sample(n_per_label=per_label, seed=1, n_steps=steps),
            n_sampled,
        )
    print(f"{n:,} cells, {args.threads} thread(s): cells per second")
    for part, rate in rates.items():
        print(f"  {part:<34} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
