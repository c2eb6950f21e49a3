"""Fail the docs build when a public name of scmodtt is missing from ``api.md``.

Colleagues add functions to the subpackages' ``__all__``; this keeps the API page complete. For
each subpackage listed in :data:`PACKAGES` that can be imported, every name of its ``__all__``
must appear in ``api.md`` as an autosummary entry or an ``autodata``/``autoclass``/
``autofunction`` directive under that subpackage's ``module``/``automodule`` directive. Each
missing name is a Sphinx warning (an error under ``-W``). A subpackage that does not exist is
skipped, unless ``api.md`` documents it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Subpackages whose ``__all__`` must be documented.
PACKAGES = (
    "scmodtt",
    "scmodtt.pp",
    "scmodtt.datasets",
    "scmodtt.metrics",
    "scmodtt.benchmark",
    "scmodtt.pl",
    "scmodtt.tl",
    "scmodtt.module",
    "scmodtt.nn",
    "scmodtt.model",
    "scmodtt.io",
)

_MODULE = re.compile(r"^\.\. (?:auto)?module:: (\S+)")
_DIRECTIVE = re.compile(r"^\s*\.\. auto(?:data|class|function|exception):: (\S+)")
_ENTRY = re.compile(r"^\s{3,}~?([A-Za-z_][\w.]*)\s*$")


def documented_names(api_page: Path) -> dict[str, set[str]]:
    """``{module: names}`` documented in ``api_page``, by the module directive they follow."""
    documented: dict[str, set[str]] = {}
    module = None
    in_autosummary = False
    for line in api_page.read_text(encoding="utf-8").splitlines():
        if match := _MODULE.match(line):
            module = match.group(1)
            documented.setdefault(module, set())
            in_autosummary = False
            continue
        if module is None:
            continue
        if match := _DIRECTIVE.match(line):
            documented[module].add(match.group(1).rsplit(".", 1)[-1])
            in_autosummary = False
        elif line.strip().startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary and (match := _ENTRY.match(line)):
            documented[module].add(match.group(1).rsplit(".", 1)[-1])
        elif line.strip() and not line.startswith(" "):
            in_autosummary = False
    return documented


def check_api_coverage(app: Sphinx) -> None:
    """Warn for each public name of scmodtt that ``api.md`` does not document."""
    api_page = Path(app.srcdir) / "api.md"
    documented = documented_names(api_page)
    for name in PACKAGES:
        try:
            package = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name or name in documented:
                # A documented subpackage is missing, or one of a subpackage's imports fails.
                logger.warning("Cannot import %s to check its API docs: %s", name, error)
            continue
        except ImportError as error:
            logger.warning("Cannot import %s to check its API docs: %s", name, error)
            continue
        # Subpackages listed in `__all__` (`scmodtt.pp`, …) are documented in their own sections.
        public = {
            item
            for item in getattr(package, "__all__", [])
            if not inspect.ismodule(getattr(package, item, None))
        }
        # A name re-exported at the top level (`scmodtt.model.MODTT` is `scmodtt.MODTT`) is
        # documented once, there.
        top = importlib.import_module("scmodtt")
        public = {
            item
            for item in public
            if not (
                name != "scmodtt"
                and getattr(top, item, None) is getattr(package, item)
                and item in documented.get("scmodtt", set())
            )
        }
        missing = sorted(public - documented.get(name, set()))
        for item in missing:
            logger.warning(
                "%s.%s is public (in __all__) but not documented in api.md; add it to the "
                "autosummary of its section.",
                name,
                item,
                location=(api_page.stem, None),
            )


def setup(app: Sphinx) -> dict:
    """Register the check to run once the builder is ready."""
    app.connect("builder-inited", check_api_coverage)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
