"""The estimator's nested parameter objects, as a grid search sees them.

``flow`` and ``al_params`` default to ``None`` (scikit-learn's rule: defaults
are never objects), yet ``GridSearchCV`` must be able to set
``flow__num_units`` or ``al_params__c0`` on a default estimator. This mixin
lists and sets those names as if the defaults were the objects they stand
for.
"""

from __future__ import annotations

from ._validation import _resolve_al_params
from .flows import RealNVP

__all__ = ["NestedParamsMixin"]


class NestedParamsMixin:
    """``get_params`` / ``set_params`` that see through default ``flow`` and ``al_params``."""

    def get_params(self, deep=True):
        """Parameters of the estimator; with ``deep``, the nested ``flow__*`` and ``al_params__*``.

        A default (``None``) ``flow`` or ``al_params``, or an ``al_params``
        dict, lists the fields of the object it stands for, so every name a
        grid search can set is discoverable here.

        Parameters
        ----------
        deep : bool, default=True

        Returns
        -------
        dict
        """
        params = super().get_params(deep=deep)
        if deep:
            stand_ins = {
                "flow": RealNVP() if self.flow is None else None,
                "al_params": (
                    _resolve_al_params(self.al_params)
                    if self.al_params is None or isinstance(self.al_params, dict)
                    else None
                ),
            }
            for name, obj in stand_ins.items():
                if obj is not None:
                    params.update({f"{name}__{k}": v for k, v in obj.get_params().items()})
        return params

    def set_params(self, **params):
        """Set parameters, including nested ``flow__*`` and ``al_params__*`` ones.

        A nested name on a default (``None``) ``flow`` or ``al_params``, or on
        an ``al_params`` dict, first replaces it by the equivalent object, so
        ``set_params(flow__num_units=25)`` works on ``EPIEstimator(f, bounds)``.

        Returns
        -------
        self : EPIEstimator
        """
        nested = {key.split("__", 1)[0] for key in params if "__" in key}
        if "flow" in nested and self.flow is None and "flow" not in params:
            self.flow = RealNVP()
        if "al_params" in nested and "al_params" not in params:
            if self.al_params is None or isinstance(self.al_params, dict):
                self.al_params = _resolve_al_params(self.al_params)
        return super().set_params(**params)
