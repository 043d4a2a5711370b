"""Model identifiers that cannot go stale: the caller's name plus a hash of the weights and the input size.

brainscore-vision caches activations (and, with ``result_caching``, scores) by the model identifier
alone. :func:`stale_proof_identifier` appends a digest of every parameter and buffer (names, dtypes,
shapes and values) and of the input size, so two runs, or two weight states of one run, never share
a cache entry even when their names (and global steps) agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["weights_digest", "stale_proof_identifier"]


def weights_digest(model: nn.Module, input_size: Sequence[int], length: int = 12) -> str:
    """A hex digest of ``model``'s state (names, dtypes, shapes, values) and of ``input_size``.

    Args:
        model: any module.
        input_size: the input size the model is fed (e.g. ``(224, 224)``).
        length: number of hex characters kept.
    """
    digest = hashlib.sha1(repr(tuple(int(s) for s in input_size)).encode())
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            if data.numel():
                digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:length]


def stale_proof_identifier(name: str, model: nn.Module, input_size: Sequence[int]) -> str:
    """``<name>-w<digest>``: ``name`` with :func:`weights_digest` of ``model`` at ``input_size``."""
    return f"{name}-w{weights_digest(model, input_size)}"
