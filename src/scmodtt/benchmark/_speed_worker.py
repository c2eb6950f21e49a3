"""One timed training run in a fresh process (called by :func:`measure_training_speed`)."""

import json
import sys

import mudata
import scvi

from ._timing import EpochTimer, PeakMemory, peak_rss_mib
from ._zoo import build_model, n_parameters


def main(argv: list[str]) -> None:
    path, name, n_epochs, out, labels_key, batch_key, seed = argv
    scvi.settings.seed = int(seed)
    mudata.set_options(pull_on_update=False)
    mdata = mudata.read_h5mu(path)
    data_rss = peak_rss_mib()
    model = build_model(
        name,
        mdata,
        labels_key=None if labels_key == "None" else labels_key,
        batch_key=None if batch_key == "None" else batch_key,
    )
    timer = EpochTimer()
    with PeakMemory() as memory:
        model.train(
            max_epochs=int(n_epochs),
            early_stopping=False,
            enable_progress_bar=False,
            callbacks=[timer],
        )
    with open(out, "w") as handle:
        json.dump(
            {
                "epoch_seconds": timer.seconds,
                "n_params": n_parameters(model),
                "peak_rss_mib": peak_rss_mib(),
                "data_rss_mib": data_rss,
                "training_rss_increase_mib": memory.increase_mib,
            },
            handle,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
