"""Hyperparameter search for EPI with scikit-learn's model selection tools.

EPI has no data to split: every fit must see the whole emergent property
(all constraints), and a candidate is judged by whether it reaches that
property and how much entropy it keeps. :func:`property_cv` gives
``GridSearchCV`` the one split that does this; ``EPIEstimator.score`` is the
criterion (the entropy if the constraints hold, else ``-inf``).

``PredefinedSplit`` does not fit: it assigns each sample (here: each
constraint) to exactly one test fold, so no split would train on all
constraints, and the fit would be asked for a property with some means and
variances missing.
"""

from __future__ import annotations

import numpy as np

__all__ = ["property_cv"]


def property_cv(mu) -> list:
    """The single train/test split for searching EPI hyperparameters.

    Parameters
    ----------
    mu : array-like of shape (m_f,)
        The property's means (only the length is used).

    Returns
    -------
    list of one (train, test) pair
        Both index arrays are ``arange(len(mu))``: each candidate is fitted
        to, and scored on, the full property.

    Examples
    --------
    >>> from sklearn_epi.model_selection import property_cv
    >>> property_cv([0.0, 6.28])
    [(array([0, 1]), array([0, 1]))]
    """
    idx = np.arange(len(np.atleast_1d(np.asarray(mu))))
    return [(idx, idx.copy())]
