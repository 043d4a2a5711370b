"""Behavioural i2n (Rajalingham et al. 2018, as brainscore-vision's ``i2n`` metric computes it).

* Model: a linear readout (standardised features, multinomial logistic regression with ``C=1e-3``:
  :func:`callbacks.brainscore.metrics.readout.logistic_probabilities`) fitted on labelled fitting images
  gives class probabilities for each test image; for each image and
  distractor object the 2AFC error rate is ``p(distractor) / (p(distractor) + p(truth))``.
* Humans: per image and distractor, the fraction of trials offering that distractor in which it
  was chosen. Trials name the two options with an optional ``distractor`` column; without it every
  other object is assumed equally likely as the distractor of a trial.
* d' per image x distractor: ``z(1 - error) - z(false-alarm rate of the distractor object)``
  (the mean error of images *of* the distractor object when the truth was offered as distractor),
  clipped to +-5, then normalised by subtracting the mean over images of each (truth, distractor).
* Score: Pearson r between model and human d' (flattened, pairs where both are defined), for each
  of 2 random halves of the human trials (``RandomState(0)``); ceiling: r between the two halves'
  d'; ceiled score: mean over the 2 splits of ``r / sqrt(ceiling)`` (brainscore-vision's i2n
  ceiling rule; the neural ``ceiling_formula`` option does not apply here).
"""

from __future__ import annotations

from collections.abc import Sequence

import warnings

import numpy as np
from scipy.special import ndtri

from neuroalign.core.errors import ConfigError

__all__ = ["human_error_matrix", "model_error_matrix", "normalized_dprimes", "i2n_score"]


def model_error_matrix(probabilities: np.ndarray, truths: Sequence[str], objects: Sequence[str]) -> np.ndarray:
    """``(n_images, n_objects)`` 2AFC error rates ``p_d / (p_d + p_truth)``; NaN where distractor == truth."""
    objects = list(objects)
    col = {o: i for i, o in enumerate(objects)}
    missing = sorted({str(t) for t in truths} - set(col))
    if missing:
        raise ConfigError(f"trials.csv truths {missing[:5]} are not labels of fitting.csv (`label`)")
    p_truth = probabilities[np.arange(len(truths)), [col[str(t)] for t in truths]][:, None]
    err = probabilities / (probabilities + p_truth)
    for i, t in enumerate(truths):
        err[i, col[str(t)]] = np.nan
    return err


def human_error_matrix(
    image_index: np.ndarray,
    truth: Sequence[str],
    choice: Sequence[str],
    distractor: Sequence[str] | None,
    n_images: int,
    objects: Sequence[str],
) -> np.ndarray:
    """``(n_images, n_objects)`` human error rates from trials (rows: images by ``image_index``)."""
    col = {o: i for i, o in enumerate(objects)}
    chosen = np.zeros((n_images, len(objects)))
    offered = np.zeros((n_images, len(objects)))
    truth = np.asarray(truth).astype(str)
    choice = np.asarray(choice).astype(str)
    for img, t, c in zip(image_index, truth, choice):
        if c != t:
            chosen[img, col[c]] += 1
    if distractor is not None:
        for img, d in zip(image_index, np.asarray(distractor).astype(str)):
            offered[img, col[d]] += 1
    else:  # every other object equally likely to be the distractor of a trial
        counts = np.bincount(image_index, minlength=n_images).astype(float)
        offered[:] = counts[:, None] / max(1, len(objects) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(offered > 0, chosen / np.where(offered > 0, offered, 1), np.nan)
    img_truth = {}
    for img, t in zip(image_index, truth):
        img_truth[img] = t
    for img, t in img_truth.items():
        err[img, col[t]] = np.nan
    return err


def normalized_dprimes(err: np.ndarray, truths: Sequence[str], objects: Sequence[str], cap: float = 5.0) -> np.ndarray:
    """Normalised d' per image x distractor from an error matrix (see module doc), vectorised over cells.

    For image ``i`` (truth ``t``) and distractor column ``j``: ``z(1 - err[i, j]) - z(FA[j, t])`` with
    ``FA[j, t]`` the mean error of the images of object ``j`` in column ``t``; clipped to +-``cap``; then
    the mean over the images of each (truth, distractor) is subtracted. Cells with truth == distractor,
    or without a false-alarm rate, are NaN.
    """
    truths = np.asarray(truths).astype(str)
    objects = [str(o) for o in objects]
    column = {o: k for k, o in enumerate(objects)}
    truth_col = np.asarray([column.get(t, -1) for t in truths])
    n_objects = len(objects)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN means are NaN, as intended
        # FA[j, t]: images of object j, their error in column t
        fa = np.stack([np.nanmean(err[truth_col == j], axis=0) if (truth_col == j).any() else np.full(n_objects, np.nan)
                       for j in range(n_objects)])
        rate = fa[np.arange(n_objects)[None, :], np.where(truth_col >= 0, truth_col, 0)[:, None]]  # (images, objects)
        dprime = np.clip(ndtri(1 - err) - ndtri(rate), -cap, cap)
        dprime[truth_col < 0] = np.nan
        dprime[np.arange(len(truths))[truth_col >= 0], truth_col[truth_col >= 0]] = np.nan
        for t in np.unique(truth_col[truth_col >= 0]):
            rows = truth_col == t
            dprime[rows] -= np.nanmean(dprime[rows], axis=0)
    return dprime


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def i2n_score(
    model_probabilities: np.ndarray,
    objects: Sequence[str],
    image_truths: Sequence[str],
    trial_image_index: np.ndarray,
    trial_truth: Sequence[str],
    trial_choice: Sequence[str],
    trial_distractor: Sequence[str] | None = None,
    n_splits: int = 2,
) -> dict[str, float]:
    """i2n raw score, ceiling and ceiled score (see module doc).

    Args:
        model_probabilities: ``(n_images, n_objects)`` readout probabilities of the test images.
        objects: object names of the probability columns.
        image_truths: the true object of each test image.
        trial_image_index: for each human trial, the row of its image.
        trial_truth, trial_choice: per trial the true and the chosen object.
        trial_distractor: per trial the other offered object (optional).
        n_splits: random halves of the trials.
    """
    objects = [str(o) for o in objects]
    unknown = sorted(set(np.asarray(trial_choice).astype(str)) - set(objects))
    if unknown:
        raise ConfigError(f"trials.csv choices {unknown[:5]} are not labels of fitting.csv (`label`)")
    n_images = len(image_truths)
    source = normalized_dprimes(model_error_matrix(model_probabilities, image_truths, objects), image_truths, objects)
    rng = np.random.RandomState(0)
    idx_all = np.asarray(trial_image_index)
    raw, ceilings, ceiled = [], [], []
    for _ in range(n_splits):
        order = list(range(len(idx_all)))
        rng.shuffle(order)
        halves = [np.asarray(order[: len(order) // 2]), np.asarray(order[len(order) // 2 :])]
        dps = []
        for h in halves:
            err = human_error_matrix(
                idx_all[h],
                np.asarray(trial_truth)[h],
                np.asarray(trial_choice)[h],
                None if trial_distractor is None else np.asarray(trial_distractor)[h],
                n_images,
                objects,
            )
            dps.append(normalized_dprimes(err, image_truths, objects))
        r = _corr(source.ravel(), dps[0].ravel())
        c = _corr(dps[0].ravel(), dps[1].ravel())
        if not np.isfinite(r) or not np.isfinite(c) or c <= 0:
            raise ConfigError(
                "i2n is undefined on these trials (too few trials per image and distractor, or no consistency "
                "between halves of trials.csv)"
            )
        raw.append(r)
        ceilings.append(c)
        ceiled.append(r / np.sqrt(c))
    return {
        "raw": float(np.mean(raw)),
        "ceiling": float(np.mean(ceilings)),
        "ceiled": float(np.mean(ceiled)),
        "error": float(np.std(ceiled)),
        "raw_per_split": [float(v) for v in raw],
        "ceiling_per_split": [float(v) for v in ceilings],
        "ceiled_per_split": [float(v) for v in ceiled],
    }
