"""Model identifiers that cannot go stale: a hash of the weights and of the input size."""

from __future__ import annotations

import torch
from torch import nn

from callbacks.brainscore.identifiers import stale_proof_identifier, weights_digest


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_same_weights_same_identifier_other_weights_or_size_another():
    name = stale_proof_identifier("run-step7", _net(), (24, 24))
    assert name.startswith("run-step7-w") and len(name) == len("run-step7-w") + 12
    assert stale_proof_identifier("run-step7", _net(), (24, 24)) == name  # same run, same weights
    assert stale_proof_identifier("run-step7", _net(seed=1), (24, 24)) != name  # another run at the same step
    assert stale_proof_identifier("run-step7", _net(), (32, 32)) != name  # another input size
    moved = _net()
    with torch.no_grad():
        moved[0].bias.add_(1e-6)  # one optimiser step's worth
    assert stale_proof_identifier("run-step7", moved, (24, 24)) != name


def test_buffers_and_dtypes_count():
    net = _net()
    before = weights_digest(net, (24, 24))
    net[1].running_mean += 0.5  # BatchNorm statistics change activations too
    assert weights_digest(net, (24, 24)) != before
    assert weights_digest(_net().to(torch.bfloat16), (24, 24)) != weights_digest(_net(), (24, 24))
