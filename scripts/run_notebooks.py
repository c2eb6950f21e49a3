"""Execute the tutorial notebooks top to bottom, report their run times, optionally store outputs.

Usage::

    python scripts/run_notebooks.py                 # execute every tutorials/*.ipynb, store nothing
    python scripts/run_notebooks.py --write         # ... and write the outputs into the notebooks
    python scripts/run_notebooks.py tutorials/quickstart.ipynb --timeout 1200

``make notebooks`` runs it with ``--write``; the docs render the stored outputs without executing
anything. ``tests/test_notebooks.py`` imports :func:`execute_notebook` from this file.

Each notebook runs in a fresh kernel of *this* Python interpreter (the virtual environment that
runs the script), whatever kernel name the notebook's metadata gives, with its working directory
set to the notebook's folder and ``MPLBACKEND=Agg``. The script exits with status 1 if any cell of
any notebook raises, after running the others.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
#: Seconds one cell may run before the notebook fails.
DEFAULT_CELL_TIMEOUT = 1800


def find_notebooks(folder: Path = TUTORIALS) -> list[Path]:
    """The notebooks of ``folder`` (not its checkpoints), sorted by name."""
    return sorted(path for path in folder.glob("*.ipynb") if path.is_file())


def _this_python_kernel_manager():
    """A kernel manager class whose kernels run ``sys.executable -m ipykernel_launcher``.

    Notebooks name the kernel ``python3``; a ``python3`` kernelspec registered on the machine may
    point at another Python without scmodtt installed, so the command is fixed to the running
    interpreter (the virtual environment that runs this script) instead of looked up.
    """
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [
                sys.executable,
                "-m",
                "ipykernel_launcher",
                "-f",
                self.connection_file,
                *(extra_arguments or []),
            ]

    return ThisPythonKernelManager


def execute_notebook(
    path: str | Path, write: bool = False, timeout: int = DEFAULT_CELL_TIMEOUT
) -> float:
    """Execute the notebook at ``path`` from top to bottom in a fresh kernel.

    Parameters
    ----------
    path
        The ``.ipynb`` file.
    write
        Store the new outputs (and execution counts) in the file. Nothing is written if a cell
        fails.
    timeout
        Seconds any one cell may run.

    Returns
    -------
    Wall-clock seconds the execution took.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        If a cell raises; the message names the cell and holds the traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path).resolve()
    notebook = nbformat.read(path, as_version=4)
    os.environ["MPLBACKEND"] = "Agg"  # inherited by the kernel: no plot windows, no GUI backend
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=_this_python_kernel_manager(),
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the notebooks named on the command line (default: all of ``tutorials/``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to run (default: tutorials/*.ipynb)"
    )
    parser.add_argument("--write", action="store_true", help="store the outputs in the notebooks")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_CELL_TIMEOUT,
        help="seconds one cell may run (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    notebooks = args.notebooks or find_notebooks()
    if not notebooks:
        print(f"No notebooks in {TUTORIALS}.")
        return 0

    failed = []
    total = time.perf_counter()
    for notebook in notebooks:
        print(f"{notebook}: running …", flush=True)
        try:
            seconds = execute_notebook(notebook, write=args.write, timeout=args.timeout)
        except Exception as error:  # noqa: BLE001 - report every failing notebook, then exit 1
            failed.append(notebook)
            print(f"{notebook}: FAILED\n{error}", file=sys.stderr, flush=True)
            continue
        stored = ", outputs stored" if args.write else ""
        print(f"{notebook}: ok in {seconds:.1f} s{stored}", flush=True)
    n_ok = len(notebooks) - len(failed)
    print(f"{n_ok}/{len(notebooks)} notebooks ran in {time.perf_counter() - total:.1f} s.")
    if failed:
        print("Failed: " + ", ".join(map(str, failed)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
