"""The eLife paper's circuit models as ready-made EPI statistics."""

from .lds import LDS_BOUNDS, LDS_MU, LDS_PARAM_NAMES, LDS_SIGMA2, lds_eigenvalues

__all__ = ["lds_eigenvalues", "LDS_PARAM_NAMES", "LDS_BOUNDS", "LDS_MU", "LDS_SIGMA2"]
