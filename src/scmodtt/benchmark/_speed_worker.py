"""One timed run in a fresh process (called by :func:`~scmodtt.benchmark.measure_training_speed`).

Arguments: a JSON file naming the data, the model, its size, the epochs, the seed, the threads and
the synthetic cells to time; the results are written to the ``out`` path it names.
"""

import json
import sys
import time

import mudata
import scvi
import torch

from ._timing import EpochTimer, PeakMemory, peak_rss_mib
from ._zoo import MODELS, build_model, n_parameters


def main(argv: list[str]) -> None:
    job = json.loads(open(argv[0]).read())
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    scvi.settings.seed = int(job["seed"])
    mudata.set_options(pull_on_update=False)
    mdata = mudata.read_h5mu(job["data"])
    data_rss = peak_rss_mib()
    model = build_model(
        job["model"],
        mdata,
        labels_key=job.get("labels_key"),
        batch_key=job.get("batch_key"),
        **job.get("model_kwargs", {}),
    )
    timer = EpochTimer()
    is_modtt = MODELS[job["model"]].family == "modtt"
    with PeakMemory() as memory:
        model.train(
            max_epochs=int(job["n_epochs"]),
            early_stopping=False,
            enable_progress_bar=False,
            **({"flow_prior": False} if is_modtt else {}),
            callbacks=[timer],
        )
    result = {
        "epoch_seconds": timer.seconds,
        "n_params": n_parameters(model),
        "peak_rss_mib": peak_rss_mib(),
        "data_rss_mib": data_rss,
        "training_rss_increase_mib": memory.increase_mib,
    }
    n_cells = int(job.get("n_sample_cells") or 0)
    if is_modtt and n_cells:
        # The flow's quality does not change its cost: one epoch makes it samplable.
        model.fit_flow_prior(max_epochs=1, progress=False)
        per_label = max(1, n_cells // len(model._known_labels()))
        model.sample(n_per_label=min(per_label, 100), seed=0)  # warm-up
        start = time.perf_counter()
        synthetic = model.sample(n_per_label=per_label, seed=1)
        result["sample_cells_per_s"] = synthetic.n_obs / (time.perf_counter() - start)
    with open(job["out"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
