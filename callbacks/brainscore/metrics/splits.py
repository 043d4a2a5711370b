"""Brain-Score's cross-validation splits (brainscore-vision ``metric_helpers.transformations.Split``).

10 splits, train fraction 0.9, ``random_state=1``; stratified by a label (``object_name`` in the
public benchmarks) with sklearn's ``StratifiedShuffleSplit``, else ``ShuffleSplit``. Rows are taken in
the order of the target assembly -- for local benchmarks the order of ``stimuli.csv``. Using the same
sklearn splitters with the same seed gives exactly the splits brainscore-vision uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from neuroalign.core.errors import ConfigError

__all__ = ["brainscore_splits", "split_masks"]


def brainscore_splits(
    n: int,
    stratify: Sequence | None = None,
    n_splits: int = 10,
    train_size: float = 0.9,
    random_state: int = 1,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_indices, test_indices)`` pairs over ``n`` rows, as brainscore-vision builds them.

    Args:
        n: number of rows (stimuli).
        stratify: one label per row to balance across train/test (``None``: plain shuffle splits).
        n_splits: number of splits.
        train_size: train fraction.
        random_state: sklearn seed (Brain-Score: 1).
    """
    if stratify is not None:
        labels = np.asarray(stratify)
        if len(labels) != n:
            raise ConfigError(f"stratification labels have {len(labels)} entries for {n} stimuli (`stratify_by`)")
        splitter = StratifiedShuffleSplit(n_splits=n_splits, train_size=train_size, random_state=random_state)
        try:
            return [(tr, te) for tr, te in splitter.split(np.zeros(n), labels)]
        except ValueError as err:
            raise ConfigError(f"cannot stratify {n} stimuli by the `stratify_by` column: {err}") from None
    splitter = ShuffleSplit(n_splits=n_splits, train_size=train_size, random_state=random_state)
    return list(splitter.split(np.zeros(n)))


def split_masks(splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int, device=None, dtype=torch.float64):
    """``(train, test)`` 0/1 masks of shape ``(n_splits, n)`` for batched computation over splits."""
    train = torch.zeros(len(splits), n, dtype=dtype, device=device)
    test = torch.zeros(len(splits), n, dtype=dtype, device=device)
    for i, (tr, te) in enumerate(splits):
        train[i, torch.as_tensor(tr, device=device, dtype=torch.long)] = 1
        test[i, torch.as_tensor(te, device=device, dtype=torch.long)] = 1
    return train, test
