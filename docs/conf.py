"""Sphinx configuration of the scmodtt documentation (cookiecutter-scverse layout).

Build offline with ``make docs``, i.e.::

    .venv/bin/sphinx-build -W --keep-going -n -b html docs docs/_build/html

Design choices, each needed for an offline build that passes with ``-W -n``:

- **Tutorials.** The notebooks live in ``../tutorials/`` (executed there by ``make notebooks``,
  which stores their outputs). Sphinx only reads sources inside ``docs/``, so this file copies
  ``../tutorials/*.ipynb`` (and images next to them) into ``docs/tutorials/`` each time it runs;
  that folder is generated and gitignored, so a fresh clone needs no symlinks and a notebook
  added to ``tutorials/`` appears in the docs without any change here. myst-nb renders them with
  ``nb_execution_mode = "off"``: the docs show the stored outputs and never execute code.
- **Intersphinx** needs the internet, which the build machine and CI do not have. It is only
  enabled with ``SCMODTT_DOCS_INTERSPHINX=1``. Without it, nitpicky references to external
  packages (torch, anndata, numpy, …) cannot resolve and are silenced by
  ``nitpick_ignore_regex``; references to scmodtt's own objects are still checked.
- **Private objects.** A docstring may point at an object of a private module
  (``scmodtt.benchmark._stats.HIGHER_IS_BETTER``); such objects have no page, so the reference is
  rendered as unlinked code — but only if the object exists (see ``_private_reference``).
- **Completeness.** ``extensions/api_coverage.py`` fails the build when a name in a subpackage's
  ``__all__`` is missing from ``api.md``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import sys
import warnings
from datetime import datetime
from importlib.metadata import metadata
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "extensions"))

# -- Project information -----------------------------------------------------------------------

info = metadata("scmodtt")
project = info["Name"]
author = "scmodtt developers"
copyright = f"{datetime.now():%Y}, {author}"
version = info["Version"]
release = version

# -- Tutorials: copy ../tutorials into docs/tutorials (generated, gitignored) -------------------

TUTORIALS_SOURCE = ROOT / "tutorials"
TUTORIALS_TARGET = HERE / "tutorials"
#: Files copied from ``tutorials/``: the notebooks and the images they may embed by relative path.
TUTORIAL_PATTERNS = ("*.ipynb", "*.png", "*.svg", "*.jpg", "*.jpeg", "*.gif")
#: The generated tutorials page. A toctree glob that matches nothing is a warning that Sphinx
#: cannot suppress, so the page lists the copied notebooks explicitly instead.
TUTORIALS_INDEX = """\
# Tutorials

The tutorials are Jupyter notebooks in the repository's `tutorials/` folder, rendered here with
the outputs stored in them. `make notebooks` re-executes every one of them from top to bottom and
stores the new outputs; `make test` executes them as tests without storing anything.

{body}
"""


def copy_tutorials(source: Path = TUTORIALS_SOURCE, target: Path = TUTORIALS_TARGET) -> list[str]:
    """Mirror the tutorial notebooks into the docs source tree and write their index page.

    Files are copied with their modification times (``shutil.copy2``), so an incremental build
    only re-reads notebooks that changed; copies whose source was removed are deleted.

    Returns
    -------
    The names of the copied notebooks.

    """
    wanted = {
        path.name: path for pattern in TUTORIAL_PATTERNS for path in sorted(source.glob(pattern))
    }
    target.mkdir(exist_ok=True)
    for stale in target.iterdir():
        if stale.is_file() and stale.name not in wanted and stale.name != "index.md":
            stale.unlink()
    for name, path in wanted.items():
        copy = target / name
        source_stat = path.stat()
        if not copy.exists() or (copy.stat().st_mtime, copy.stat().st_size) != (
            source_stat.st_mtime,
            source_stat.st_size,
        ):
            shutil.copy2(path, copy)
    notebooks = sorted(name for name in wanted if name.endswith(".ipynb"))
    if notebooks:
        entries = "\n".join(Path(name).stem for name in notebooks)
        body = f"```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```"
    else:
        body = "This build found no notebooks in `tutorials/`."
    index = target / "index.md"
    text = TUTORIALS_INDEX.format(body=body)
    if not index.exists() or index.read_text(encoding="utf-8") != text:
        index.write_text(text, encoding="utf-8")
    return notebooks


TUTORIAL_NOTEBOOKS = copy_tutorials()

# -- General configuration ---------------------------------------------------------------------

extensions = [
    "myst_nb",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinxcontrib.bibtex",
    "sphinx_autodoc_typehints",  # after napoleon
    "IPython.sphinxext.ipython_console_highlighting",
    *[path.stem for path in sorted((HERE / "extensions").glob("*.py"))],
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "extensions"]
source_suffix = {".rst": "restructuredtext", ".ipynb": "myst-nb", ".md": "myst-nb"}
master_doc = "index"
default_role = "literal"
nitpicky = True
# Deprecation notices of sphinx-autodoc-typehints about Sphinx 10 are not about these docs.
warnings.filterwarnings("ignore", message=r".*is deprecated\. Check CHANGES for Sphinx API")

# -- MyST and myst-nb --------------------------------------------------------------------------

myst_enable_extensions = [
    "amsmath",
    "colon_fence",
    "deflist",
    "dollarmath",
    "html_image",
    "html_admonition",
    "substitution",
]
myst_heading_anchors = 3
myst_url_schemes = ("http", "https", "mailto")
nb_execution_mode = "off"  # never execute on build; outputs come from `make notebooks`
nb_merge_streams = True
nb_output_stderr = "remove"  # training logs and progress bars; "remove-warn" would fail -W

# -- Autodoc, autosummary, napoleon, typehints -------------------------------------------------

autosummary_generate = True


#: Subpackages whose classes the API page documents (for the class template's context below).
API_PACKAGES = (
    "scmodtt",
    "scmodtt.pp",
    "scmodtt.datasets",
    "scmodtt.metrics",
    "scmodtt.benchmark",
    "scmodtt.pl",
    "scmodtt.module",
    "scmodtt.nn",
)


def docstring_attributes(obj) -> list[str]:
    """Names an "Attributes" section of the object's numpy docstring documents one by one.

    Napoleon renders that section as attribute entries; the class template leaves these names out
    of its own ``autoattribute`` list so that they are not described twice (a Sphinx warning).
    """
    doc = inspect.getdoc(obj) or ""
    section = re.search(
        r"^Attributes\n-{3,}\n(?P<body>.*?)(?=^\S[^\n]*\n-{3,}\n|\Z)", doc, re.MULTILINE | re.DOTALL
    )
    if section is None:
        return []
    return re.findall(r"^(\w+)(?:\s*:.*)?$", section.group("body"), re.MULTILINE)


def documented_attributes(packages=API_PACKAGES) -> dict[str, list[str]]:
    """``{class full name: docstring_attributes(class)}`` for the public classes of ``packages``."""
    found = {}
    for package_name in packages:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue  # the api_coverage extension reports subpackages that fail to import
        for name in getattr(package, "__all__", []):
            obj = getattr(package, name, None)
            if inspect.isclass(obj):
                found[f"{package_name}.{name}"] = docstring_attributes(obj)
    return found


# A plain dict (not a function) so that Sphinx can cache the configuration.
autosummary_context = {"docstring_attributes": documented_attributes()}
autosummary_imported_members = True
autodoc_member_order = "groupwise"
autodoc_typehints = "description"
autoclass_content = "class"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_include_init_with_doc = False
napoleon_use_rtype = True
napoleon_use_param = True
# "Attributes" sections become attribute entries, which references can target.
napoleon_use_ivar = False
napoleon_custom_sections = [("Params", "Parameters")]
typehints_defaults = "braces"
typehints_document_rtype = True
always_document_param_types = False

# -- Bibliography ------------------------------------------------------------------------------

bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"
bibtex_default_style = "plain"

# -- Intersphinx (opt-in: needs the internet) --------------------------------------------------

INTERSPHINX_MAPPING = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/pandas-docs/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "mudata": ("https://mudata.readthedocs.io/en/latest/", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
    "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
}
USE_INTERSPHINX = os.environ.get("SCMODTT_DOCS_INTERSPHINX") == "1"
intersphinx_mapping = INTERSPHINX_MAPPING if USE_INTERSPHINX else {}

# -- Nitpicky mode: silence external objects only ----------------------------------------------

#: Packages whose objects are documented elsewhere: unresolvable offline, never scmodtt's own.
EXTERNAL_PACKAGES = (
    "torch",
    "anndata",
    "ad",
    "mudata",
    "md",
    "muon",
    "pandas",
    "pd",
    "numpy",
    "np",
    "scipy",
    "sp",
    "sklearn",
    "scvi",
    "lightning",
    "tensorly",
    "tltorch",
    "scanpy",
    "sc",
    "matplotlib",
    "plt",
    "jax",
    "h5py",
    # the Python standard library
    "collections",
    "typing",
    "typing_extensions",
    "os",
    "pathlib",
    "contextlib",
    "dataclasses",
    "enum",
    "numbers",
    "logging",
    "functools",
    "types",
    "abc",
)
_external = "|".join(EXTERNAL_PACKAGES)
nitpick_ignore_regex = [
    # `pandas.DataFrame`, `torch.nn.Module`, `collections.abc.Sequence`, …
    (r"py:.*", rf"({_external})(\..+)?"),
    # Python's `...` in type hints such as `tuple[int, ...]`.
    (r"py:.*", r"Ellipsis"),
    # scmodtt's private modules (`scmodtt.metrics._space.…`): internal pointers for developers,
    # not part of the documented API. Public scmodtt objects stay checked.
    (r"py:.*", r"scmodtt(\.\w+)*\._\w+(\.\w+)*"),
]

# -- Module-level constants ------------------------------------------------------------------


def _constant_docstring(app, what, name, obj, options, lines):
    """Drop the builtin type's docstring that autodoc shows for a constant (e.g. ``dict.__doc__``).

    A constant re-exported by a subpackage has its ``#:`` comment in the private module that
    defines it, where autodoc does not look; ``api.md`` describes such constants itself.
    """
    type_doc = inspect.cleandoc(type(obj).__doc__ or "").splitlines()
    text = [line.strip() for line in lines if line.strip()]
    if what == "data" and type_doc and text and text[0] == type_doc[0].strip():
        lines.clear()


# -- References to private objects ------------------------------------------------------------

_DOCSTRING_SOURCE = re.compile(r"docstring of (?P<qualname>scmodtt(?:\.\w+)+)")
_MISSING = object()


def _private_reference(app, env, node, contnode):
    """Render a reference from a docstring to an undocumented object of a private module as code.

    A docstring in ``scmodtt.benchmark._stats`` may refer to that module's constants by bare name
    (``:data:`HIGHER_IS_BETTER```). Such objects are not part of the documented API, so the
    reference cannot resolve; it is kept as unlinked code when the name exists in the private
    module the docstring comes from. A name that exists nowhere still fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    match = _DOCSTRING_SOURCE.search(node.source or "")
    if match is None:
        return None
    parts = match.group("qualname").split(".")
    module = next(
        (
            sys.modules[".".join(parts[:i])]
            for i in range(len(parts), 0, -1)
            if ".".join(parts[:i]) in sys.modules
        ),
        None,
    )
    if module is None or not any(part.startswith("_") for part in module.__name__.split(".")):
        return None
    obj = module
    for attribute in node.get("reftarget", "").lstrip("~.").split("."):
        obj = getattr(obj, attribute, _MISSING)
        if obj is _MISSING:
            return None
    return contnode


def setup(app):
    """Connect the docstring and reference hooks."""
    app.connect("autodoc-process-docstring", _constant_docstring)
    app.connect("missing-reference", _private_reference)


# -- HTML output -------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = "scmodtt"
html_show_sphinx = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
pygments_style = "default"
