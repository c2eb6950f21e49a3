"""Render numpy-style "Returns" sections written as prose, as scanpy and cookiecutter-scverse do.

Napoleon reads the first line of a numpy "Returns" section as a return *type*. scmodtt's
docstrings (like scanpy's) describe the returned value in prose instead, e.g.
``Array of shape (n_cells, n_latent).``; this makes the whole section the ``:returns:`` text and
leaves the type to sphinx-autodoc-typehints, which takes it from the annotation. A line of the
form ``name : type`` is rendered as a bullet with a link to the type.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable

from sphinx.application import Sphinx
from sphinx.ext.napoleon import NumpyDocstring


def _process_return(lines: Iterable[str]) -> Generator[str, None, None]:
    for line in lines:
        if m := re.fullmatch(r"(?P<param>\w+)\s+:\s+(?P<type>[\w.]+)", line):
            yield f"-{m['param']} (:class:`~{m['type']}`)"
        else:
            yield line


def _parse_returns_section(self: NumpyDocstring, section: str) -> list[str]:
    lines_raw = self._dedent(self._consume_to_next_section())
    if lines_raw and lines_raw[0] == ":":
        del lines_raw[0]
    lines = self._format_block(":returns: ", list(_process_return(lines_raw)))
    if lines and lines[-1]:
        lines.append("")
    return lines


def setup(app: Sphinx) -> dict:
    """Patch napoleon's numpy "Returns" parser."""
    NumpyDocstring._parse_returns_section = _parse_returns_section
    return {"parallel_read_safe": True, "parallel_write_safe": True}
