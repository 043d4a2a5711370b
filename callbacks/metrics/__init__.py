"""Brain-Score metrics in torch: PLS regression, Pearson per neuroid, splits, ceilings, i2n."""

from .ceiling import ceil_score, internal_consistency
from .correlation import pearson_per_column
from .pls import PLSRegression, pls_cv_correlations
from .splits import brainscore_splits

__all__ = [
    "PLSRegression",
    "pls_cv_correlations",
    "pearson_per_column",
    "brainscore_splits",
    "internal_consistency",
    "ceil_score",
]
