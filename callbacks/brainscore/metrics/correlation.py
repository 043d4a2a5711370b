"""Pearson correlation per column (neuroid), batched and optionally masked -- no loop over neuroids."""

from __future__ import annotations

import torch

__all__ = ["pearson_per_column", "nanmedian"]


def pearson_per_column(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pearson r between matching columns of ``x`` and ``y`` over their rows.

    Args:
        x: ``(..., n, q)`` predictions (leading dimensions are batched, e.g. splits).
        y: ``(..., n, q)`` targets (broadcast against ``x``).
        mask: optional 0/1 weights selecting the rows to correlate: ``(..., n)`` for all columns alike
            (e.g. a split's test rows) or ``(..., n, q)`` per column (e.g. pairwise-complete rows).

    Returns:
        ``(..., q)`` correlations; NaN where a column is constant over the selected rows (as scipy).
    """
    x, y = torch.broadcast_tensors(x, y)
    if mask is None:
        mask = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)
    m = mask.to(x.dtype)
    if m.dim() < x.dim() or m.shape[-1] != x.shape[-1] or m.shape[-2] != x.shape[-2]:
        m = m.unsqueeze(-1)
    x, y = torch.nan_to_num(x) * m, torch.nan_to_num(y) * m
    n = m.sum(-2, keepdim=True)
    xm = x - (x * m).sum(-2, keepdim=True) / n
    ym = y - (y * m).sum(-2, keepdim=True) / n
    xm, ym = xm * m, ym * m
    cov = (xm * ym).sum(-2)
    norm = torch.sqrt((xm * xm).sum(-2) * (ym * ym).sum(-2))
    r = cov / norm
    tiny = torch.finfo(x.dtype).eps * 10
    return torch.where(norm > tiny, r.clamp(-1.0, 1.0), torch.full_like(r, float("nan")))


def nanmedian(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Median ignoring NaN that averages the two middle values of an even count (as numpy / xarray).

    ``torch.nanmedian`` returns the lower middle value instead, which would bias Brain-Score medians.
    """
    return torch.nanquantile(x, 0.5, dim=dim)
