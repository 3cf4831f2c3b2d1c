"""Sphinx configuration for the sklearn_epi documentation."""

project = "sklearn_epi"
author = "sklearn_epi developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
