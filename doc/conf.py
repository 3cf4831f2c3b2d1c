"""Sphinx configuration for the sklearn_epi documentation.

Build with ``make html`` (warnings are errors) or
``python -m sphinx -b html -W --keep-going doc doc/_build/html``. The gallery
runs every ``examples/plot_*.py``; an example that raises fails the build.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document the checkout this file belongs to, whatever is installed.
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import sklearn_epi  # noqa: E402

project = "sklearn_epi"
author = "sklearn_epi developers"
copyright = "2025, sklearn_epi developers"
release = sklearn_epi.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax from the build's _static folder, not a CDN: the maths renders
    # offline (a cluster, a plane).
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# API reference: one page per public name, generated at build time, so the
# circuits list follows ``sklearn_epi.circuits.__all__``.
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

# Gallery: examples/plot_*.py are run; other files there (helper scripts that
# write data, e.g. fit_*.py) are neither run nor listed.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # SKLEARN_EPI_EXAMPLES narrows the examples run in a local build, e.g.
    # "plot_sensitivity"; the others are then listed but not executed.
    "filename_pattern": os.environ.get("SKLEARN_EPI_EXAMPLES", r"/plot_"),
    # Matched against the file name alone.
    "ignore_pattern": r"^(?!plot_)",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "download_all_examples": False,
    # animate_epochs in the LDS example: a player in the page (JavaScript
    # and embedded frames, nothing fetched).
    "matplotlib_animations": True,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 5,
    # "Examples using X" lists on each API page.
    "doc_module": ("sklearn_epi",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"sklearn_epi": None},
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_epi {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = ["_static"]
html_css_files = ["custom.css"]


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated ``set_*_request`` methods (metadata routing)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def _data_docstring(app, what, name, obj, options, lines):
    """Document a constant by its ``#:`` comment, not by its type's docstring.

    ``sklearn_epi.circuits`` re-exports constants defined in submodules, so
    autodoc looks for their comments in the wrong module and falls back to
    the docstring of ``ndarray`` or ``dict``. Look the comment up in the
    module that defines the constant; without one, show no text.
    """
    # An instance's docstring is its type's unless set on the instance itself
    # (numpy 2.5's arrays no longer return exactly ``ndarray.__doc__``).
    if what != "data" or "__doc__" in getattr(obj, "__dict__", {}):
        return
    from sphinx.pycode import ModuleAnalyzer

    attr = name.rsplit(".", 1)[-1]
    comment = []
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith("sklearn_epi.") or getattr(module, attr, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # not parsable (compiled, generated): no comment there
            continue
        if ("", attr) in docs:
            comment = list(docs[("", attr)])
            break
    lines[:] = comment


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
    # Before numpydoc (priority 500) reformats the type's docstring.
    app.connect("autodoc-process-docstring", _data_docstring, priority=400)
