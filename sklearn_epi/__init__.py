"""Emergent property inference (EPI) as a scikit-learn estimator.

EPI (Bittner et al., eLife 2021) finds the maximum-entropy distribution of a
circuit model's parameters whose predictions have chosen means and
variances, represented as a normalizing flow.
"""

from .estimator import EPIEstimator
from .flows import MAF, RealNVP
from .optimize import ALParams

__all__ = ["EPIEstimator", "RealNVP", "MAF", "ALParams"]
__version__ = "0.1.0"
