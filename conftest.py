"""Collection of the package's doctests: the web interface only where its extra is installed."""

import importlib.util

# sklearn_epi.ui imports dash (the optional extra sklearn_epi[ui]); without
# it, importing its modules for their doctests would fail at collection.
collect_ignore_glob = [] if importlib.util.find_spec("dash") else ["sklearn_epi/ui/*"]
