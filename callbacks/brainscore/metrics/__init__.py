"""Brain-Score metrics in torch: PLS regression, Pearson per neuroid, splits, ceilings, i2n."""

from callbacks.brainscore.metrics.ceiling import ceil_score, internal_consistency
from callbacks.brainscore.metrics.correlation import pearson_per_column
from callbacks.brainscore.metrics.pls import PLSRegression, pls_cv_correlations
from callbacks.brainscore.metrics.splits import brainscore_splits

__all__ = [
    "PLSRegression",
    "pls_cv_correlations",
    "pearson_per_column",
    "brainscore_splits",
    "internal_consistency",
    "ceil_score",
]
