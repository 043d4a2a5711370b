"""The behavioural readout in torch: standardised features -> L2-regularised multinomial logistic regression.

brainscore-vision's ``ProbabilitiesMapping`` (the model side of every probabilities task, e.g. the
Rajalingham2018 i2n benchmarks) fits ``StandardScaler`` then ``LogisticRegression(multi_class='multinomial',
solver='newton-cg', C=1e-3)`` on the fitting stimuli's features and reads class probabilities of the test
stimuli. This module fits the same model on the features' device:

* standardisation as ``StandardScaler``: the fitting features' mean and population standard deviation
  (a constant feature keeps scale 1);
* the objective sklearn minimises, ``mean cross-entropy + ||W||^2 / (2 C n)`` (the intercept is not
  penalised). It is strictly convex, so every exact solver reaches the same optimum: here full-batch
  L-BFGS in float64 (gradient tolerance 1e-7), which leaves probabilities within ~2e-4 of sklearn's
  newton-cg at its default ``tol=1e-4`` (sklearn's own distance from the optimum);
* with more features than fitting images the optimal ``W`` lies in the span of the fitting features, so
  the fit runs in that ``n``-dimensional span (``X = U S V'``, coordinates ``U S``; the penalty is
  unchanged) -- the same optimum at ``n x n`` cost, however wide the layer.

Columns are the classes in the order given (brainscore-vision: the order labels first appear in the
fitting stimuli; sklearn: sorted).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neuroalign.core.errors import ConfigError

__all__ = ["logistic_probabilities"]


def logistic_probabilities(
    fit_features: torch.Tensor | np.ndarray,
    fit_labels: Sequence[str],
    features: torch.Tensor | np.ndarray,
    C: float = 1e-3,
    classes: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    max_iter: int = 300,
    config_key: str = "the fitting labels",
) -> tuple[np.ndarray, list[str]]:
    """Class probabilities ``(n_images, n_classes)`` of a logistic readout, and the class names (columns).

    Args:
        fit_features: ``(n_fit, p)`` features of the fitting images.
        fit_labels: their labels.
        features: ``(n, p)`` features of the images to read out.
        C: inverse regularisation strength (brainscore-vision: 1e-3).
        classes: column order (default: sorted labels, as sklearn's ``classes_``).
        device: where to fit (default: ``fit_features``' device).
        max_iter: L-BFGS iterations at most.
        config_key: where the labels come from, named in errors.

    Raises:
        ConfigError: fewer than two distinct labels, or a label outside ``classes``.
    """
    labels = [str(label) for label in np.asarray(fit_labels).astype(str)]
    classes = [str(c) for c in classes] if classes is not None else sorted(set(labels))
    if len(set(labels)) < 2:
        raise ConfigError(f"{config_key} needs at least 2 distinct objects to fit the behavioural readout")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ConfigError(f"{config_key}: labels {unknown[:5]} are not among the readout's classes")
    X = torch.as_tensor(fit_features)
    device = torch.device(device) if device is not None else X.device
    X = X.to(device=device, dtype=torch.float64)
    T = torch.as_tensor(features).to(device=device, dtype=torch.float64)
    y = torch.tensor([index[label] for label in labels], device=device)
    mean = X.mean(0)
    scale = X.std(0, unbiased=False)
    scale = torch.where(scale > 10 * torch.finfo(scale.dtype).eps * mean.abs().clamp_min(1.0), scale, torch.ones_like(scale))
    X = (X - mean) / scale
    T = (T - mean) / scale
    if X.shape[1] > X.shape[0]:  # fit in the span of the fitting features (see module doc)
        S2, U = torch.linalg.eigh(X @ X.T)
        keep = S2 > S2.max() * 1e-12
        U, root = U[:, keep], S2[keep].sqrt()
        T = (T @ X.T) @ U / root
        X = U * root
    n, k = X.shape[0], len(classes)
    W = torch.zeros(X.shape[1], k, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, device=device, requires_grad=True)
    strength = 1.0 / (2.0 * C * n)
    optimiser = torch.optim.LBFGS(
        [W, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-15, history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(X @ W + b, y) + strength * (W * W).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    with torch.no_grad():
        probabilities = torch.softmax(T @ W + b, dim=1)
    return probabilities.cpu().numpy(), classes
