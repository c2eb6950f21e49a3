"""The tidy, append-only results file that makes the benchmark resumable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["dataset", "model", "protocol", "seed", "budget", "n_params", "metric", "value"]


class ResultsFile:
    """``results.csv`` with one row per dataset × model × protocol × seed × budget × metric.

    Rows of a run are appended together once the run has finished, so a run is either fully in the
    file or not at all; :meth:`done` tells a rerun what to skip.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._finished = set()
        if self.path.exists():
            self._finished = _run_keys(self.read())

    def read(self) -> pd.DataFrame:
        """All rows written so far."""
        if not self.path.exists():
            return pd.DataFrame(columns=COLUMNS)
        return pd.read_csv(self.path, dtype={"budget": str})

    def done(self, dataset: str, model: str, seed: int, budget: str) -> bool:
        """Whether this run's rows are already in the file."""
        return (dataset, model, int(seed), str(budget)) in self._finished

    def append(self, rows: pd.DataFrame) -> None:
        """Append one finished run's rows."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = rows[COLUMNS]
        rows.to_csv(self.path, mode="a", header=not self.path.exists(), index=False)
        self._finished |= _run_keys(rows)


def _run_keys(rows: pd.DataFrame) -> set[tuple[str, str, int, str]]:
    """``(dataset, model, seed, budget)`` of each row, typed as :meth:`ResultsFile.done` asks."""
    return set(
        zip(
            rows["dataset"],
            rows["model"],
            rows["seed"].astype(int),
            rows["budget"].astype(str),
            strict=True,
        )
    )
