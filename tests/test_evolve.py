"""evolve(): the plain evolution loop without a Trainer, its unit-health policy, and the generator's start codes."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.generators.pixels import PixelGenerator
from lightning_modules.evolution.health import UnitHealth, health_flags
from lightning_modules.evolution.loop import EvolutionLoop, build_optimizer, evolve
from lightning_modules.evolution.module import EvolutionModule
from lightning_modules.evolution.optimizers.pycma import PyCMA
from lightning_modules.evolution.units import Unit, UnitSet


def _cnn(dead_channel: int | None = None, fill: float = -1e3) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    if dead_channel is not None:
        with torch.no_grad():
            net[0].bias[dead_channel] = fill  # ReLU(conv) channel: 0 (or NaN) whatever the image
    return net


def test_evolve_improves_active_units_and_retires_a_dead_one_without_a_trainer():
    net = _cnn(dead_channel=3)
    units = UnitSet(net, [Unit("4", 0), Unit("1", 3), Unit("4", 2)], probe_size=(8, 8))
    seen = []
    result = evolve(PixelGenerator(8), None, units, generations=15, seed=2, dead_patience=4, callback=lambda loop: seen.append(loop.report.generation))
    assert seen == list(range(15)) and result.generations == 15
    assert result.history.shape == (15, 3, 4) and result.best_images.shape == (3, 3, 8, 8)
    assert result.retired.keys() == {"1_3"} and result.retired["1_3"][0] == 4
    assert "constant activation 0" in result.retired["1_3"][1] and result.stop_message is None
    for j in (0, 2):  # the live units improve on their start (generation 0 is the start code alone)
        assert result.best_scores[j] > result.history[0, j, 1]
    torch.testing.assert_close(units.activations(result.best_images).diagonal()[[0, 2]], result.best_scores[[0, 2]])


def test_evolve_takes_a_score_function_and_a_callback_may_stop_it():
    target = torch.rand(3, 4, 4)
    score = lambda images: -(images - target).pow(2).flatten(1).mean(1)  # noqa: E731
    result = evolve(PixelGenerator(4), lambda dim, **kw: PyCMA(dim, population_size=8, **kw), score, generations=50, callback=lambda loop: loop.state.generation >= 6)
    assert result.labels == ["score"] and result.generations == 6 and result.history.shape == (6, 1, 4)
    assert torch.all(result.history[1:, 0, 2] >= result.history[:-1, 0, 2])  # best so far never decreases


def test_every_unit_retired_stops_the_run_and_nan_is_not_constant():
    net = _cnn(dead_channel=3, fill=float("nan"))
    units = UnitSet(net, [Unit("1", 3)], probe_size=(8, 8))
    result = evolve(PixelGenerator(8), None, units, generations=10)
    assert result.retired == {"1_3": (0, "NaN activation from the model")} and result.generations == 1
    assert result.stop_message.startswith("every unit is retired (1_3 at generation 0: NaN activation")
    scores = torch.tensor([[1.0, 1.0], [float("nan"), 1.0], [float("inf"), 2.0], [0.0, 1.0]])
    flags = health_flags(scores, torch.tensor([True, True, True, False]))
    assert flags.tolist() == [[False, False, True], [True, False, False], [False, True, False], [False, False, False]]


def test_unit_health_waits_its_patience_then_stops_when_asked():
    health = UnitHealth(["a", "b"], dead_patience=2, on_dead_unit="stop")
    constant_b = torch.tensor([[False, False, False], [False, False, True]])
    stats = torch.zeros(2, 4)
    assert health.update(0, stats, constant_b) == [] and health.stop_message is None
    (retired,) = health.update(1, stats, constant_b)
    assert (retired.unit, retired.generation) == (1, 1) and "dead_patience 2" in retired.reason
    assert health.active.tolist() == [True, False] and "on_dead_unit is 'stop'" in health.stop_message
    with pytest.raises(ConfigError, match="dead_patience"):
        UnitHealth(["a"], dead_patience=0)


def test_the_evolution_starts_from_the_generators_init_codes(tmp_path):
    """A clamp PixelGenerator promises a mid-grey start (0.5 everywhere), not the black zero code."""
    gen = PixelGenerator(4, activation="clamp")
    first = []
    evolve(gen, None, lambda images: first.append(images) or images.mean((1, 2, 3)), generations=1)
    torch.testing.assert_close(first[0], torch.full((1, 3, 4, 4), 0.5))
    assert torch.equal(build_optimizer(None, gen, 2, seed=0).mean, torch.full((2, 48), 0.5))
    # the Lightning module starts there too: generation 0 scores the grey image
    net = _cnn()
    module = EvolutionModule(net, [Unit("4", 1)], PixelGenerator(8, activation="clamp"), n_generations=1)
    L.Trainer(accelerator="cpu", max_epochs=1, default_root_dir=tmp_path, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(module)
    grey = module.unit_set.activations(torch.full((1, 3, 8, 8), 0.5))[0, 0]
    torch.testing.assert_close(module.history[0, 0, 0], grey)
    assert isinstance(module.loop, EvolutionLoop) and module.loop.state is module.state
