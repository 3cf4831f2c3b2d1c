"""``sklearn-epi ui``: a local web interface over a store of EPI runs.

Every run of a directory as a sortable, filterable table; a run's history
updating live while it fits; once fitted, its pairplot, predictive check and
the Hessian's most and least sensitive directions at the mode; two or more
runs compared; and a form that launches, stops and resumes fits as
``sklearn-epi fit`` processes.

Built on Dash: a well-kept, pure-Python framework over Flask and Plotly,
with a native sortable and filterable DataTable, Flask's request hooks for
the token check, and no JavaScript build. It is an optional extra
(``pip install 'sklearn_epi[ui]'``); importing :mod:`sklearn_epi` never
imports it.

The interface reads only data files (JSON, TOML, YAML, the package's safe
``.npz`` format), never a pickle, and imports no module a file names: a
statistic outside :mod:`sklearn_epi` runs only in the fits the user launches.
"""

try:
    import dash  # noqa: F401
    import plotly  # noqa: F401
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "sklearn_epi.ui needs Dash and Plotly, the optional extra: "
        "pip install 'sklearn_epi[ui]'"
        f" ({exc})"
    ) from exc

from ._app import create_app, serve  # noqa: E402

__all__ = ["create_app", "serve"]
