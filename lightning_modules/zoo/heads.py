"""Classification heads of plain networks: find the last linear layer and replace it."""

from __future__ import annotations

from torch import nn

from neuroalign.core.errors import ConfigError
from neuroalign.core.layers import get_layer

__all__ = ["last_linear_name", "replace_last_linear"]


def last_linear_name(net: nn.Module) -> str | None:
    """The ``named_modules()`` name of ``net``'s last ``nn.Linear`` (its classifier), ``None`` if it has none."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    return names[-1] if names else None


def replace_last_linear(net: nn.Module, num_classes: int) -> None:
    """Swap the last ``nn.Linear`` of ``net`` for a fresh ``num_classes``-way one (same input width and bias)."""
    name = last_linear_name(net)
    if name is None:
        raise ConfigError(f"{type(net).__name__} has no nn.Linear classifier to replace")
    old = get_layer(net, name)
    parent_name, _, attr = name.rpartition(".")
    parent = get_layer(net, parent_name) if parent_name else net
    setattr(parent, attr, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
