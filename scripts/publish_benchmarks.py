"""Copy benchmark reports, figures and raw results into the docs.

Reports go to docs/benchmark_reports/, figures to docs/figures/benchmark/, and each run's
per-seed rows (``results.csv``, ``metadata_*.json``) to docs/benchmark_reports/results/<run>/:
the tables can be recomputed from them (``scripts/headline_table.py``,
``scripts/generator_targets.py``), and copying that folder back to ``results/<run>/`` lets
``scmodtt-benchmark`` resume the run with more seeds on another machine.

Usage, after `scripts/run_published_benchmarks.sh`:

    .venv/bin/python scripts/publish_benchmarks.py \
        results/reapseq results/bmmc results/reapseq_whole
"""

import re
import shutil
import sys
from pathlib import Path

from scmodtt.benchmark import write_report

DOCS = Path(__file__).parents[1] / "docs"


def publish(out: Path) -> Path:
    report = out / "report.md"
    if not report.exists():
        report = write_report(out)
    # Figures are named after the dataset; prefix the folder so that two runs of one dataset
    # (e.g. HVGs and whole transcriptome) keep their own.
    figures = DOCS / "figures" / "benchmark"
    figures.mkdir(parents=True, exist_ok=True)
    for png in (out / "figures").glob("*.png"):
        shutil.copy(png, figures / f"{out.name}_{png.name}")
    text = re.sub(r"\]\(figures/", f"](../figures/benchmark/{out.name}_", report.read_text())
    target = DOCS / "benchmark_reports" / f"{out.name}.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    raw = target.parent / "results" / out.name
    raw.mkdir(parents=True, exist_ok=True)
    for table in [out / "results.csv", *out.glob("metadata_*.json")]:
        shutil.copy(table, raw / table.name)
    return target


if __name__ == "__main__":
    for folder in sys.argv[1:]:
        print(publish(Path(folder)))
