"""EvolutionModule: it optimises, batches K units x lambda images, resumes exactly, stops on dead units."""

from __future__ import annotations

import filecmp
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from torch import nn
from torchvision.utils import save_image

from neuroalign.cli import main
from neuroalign.core.errors import ConfigError
from lightning_modules.evolution.generators.pixels import PixelGenerator
from lightning_modules.evolution.images import load_image_folder
from lightning_modules.evolution.module import EvolutionModule, EvolutionStopped
from lightning_modules.evolution.optimizers.cholesky_cmaes import CholeskyCMAES
from lightning_modules.evolution.optimizers.pycma import PyCMA
from lightning_modules.evolution.outputs import read_scores, read_summary
from lightning_modules.evolution.training import TellOptimizer
from lightning_modules.evolution.units import Unit
from lightning_modules.zoo import ZooModel


def _cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))


def _trainer(root: Path, callbacks=(), checkpoints: bool = False, **kwargs) -> L.Trainer:
    kwargs.setdefault("max_epochs", 1)
    return L.Trainer(
        accelerator="cpu",
        default_root_dir=root,
        logger=L.pytorch.loggers.CSVLogger(root),
        callbacks=list(callbacks),
        enable_checkpointing=checkpoints,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def _scores_csv(root: Path) -> Path:
    return root / "lightning_logs" / "version_0" / "evolution" / "scores.csv"


def test_linear_filter_reaches_90_percent_of_its_analytic_optimum(tmp_path):
    side = 6
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * side * side, 1))
    w, b = net[1].weight[0].detach(), net[1].bias[0].item()
    best_possible = w.clamp(min=0).sum().item() + b  # pixels in [0, 1]: 1 where w > 0, else 0
    worst_possible = w.clamp(max=0).sum().item() + b
    module = EvolutionModule(net, [Unit("1", 0)], PixelGenerator(side), n_generations=60, seed=0)
    _trainer(tmp_path).fit(module)
    reached = (module.best_scores[0].item() - worst_possible) / (best_possible - worst_possible)
    assert reached >= 0.9
    first = (module.history[0, 0, 2].item() - worst_possible) / (best_possible - worst_possible)
    assert first < 0.6  # it started from the grey zero code, so the optimiser did the work


def test_prototype_beats_every_natural_image_on_a_random_cnn(tmp_path):
    torch.manual_seed(3)
    folder = tmp_path / "natural"
    folder.mkdir()
    for i in range(12):  # smooth random "natural" images
        low = torch.rand(3, 4, 4)
        save_image(nn.functional.interpolate(low[None], size=(16, 16), mode="bilinear")[0], folder / f"img_{i:02d}.png")
    natural, _ = load_image_folder(folder, size=16)
    net = _cnn(1)
    module = EvolutionModule(net, [Unit("0", 2), Unit("4", 1)], PixelGenerator(16), n_generations=25, seed=1)
    natural_scores = module.unit_set.activations(natural)
    _trainer(tmp_path).fit(module)
    assert (module.best_scores > natural_scores.max(0).values).all()
    protos = torch.load(_scores_csv(tmp_path).parent / "prototypes.pt", weights_only=True)
    rescored = module.unit_set.activations(protos["images"]).diagonal()
    torch.testing.assert_close(rescored, module.best_scores)


def test_one_generator_and_one_model_forward_per_generation(tmp_path):
    gen, net = PixelGenerator(8), _cnn()
    seen = {"gen": [], "model": 0}
    gen.register_forward_pre_hook(lambda m, args: seen["gen"].append(args[0].shape[0]))
    net.register_forward_pre_hook(lambda *a: seen.__setitem__("model", seen["model"] + 1))
    module = EvolutionModule(net, [Unit("0", 0), Unit("0", 1), Unit("4", 2)], gen, n_generations=3, snapshot_every=100)
    seen["model"] = 0
    trainer = _trainer(tmp_path)
    trainer.fit(module)
    lam = module.evolver.population_size
    # generation 0: one zero code per unit; then K x lambda codes in one batch; + final best images
    assert seen["gen"][:3] == [3, 3 * lam, 3 * lam]
    assert seen["model"] == 3
    assert trainer.global_step == 3 and module.generation == 3
    # the Lightning optimiser step is the tell: one step per generation, the anchor never moves
    assert isinstance(trainer.optimizers[0], TellOptimizer) and module.evolver.generation == 3
    assert module.state_dict()["_step_anchor"].tolist() == [0.0]


def test_max_steps_bounds_the_generations(tmp_path):
    module = EvolutionModule(_cnn(), [Unit("4", 0)], PixelGenerator(8), n_generations=50)
    _trainer(tmp_path, max_steps=4, max_epochs=-1).fit(module)
    assert module.generation == 4
    assert len(_scores_csv(tmp_path).read_text().splitlines()) == 1 + 4


class _Crash(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.at:
            raise RuntimeError("simulated crash")


def test_resume_after_interruption_reproduces_scores_exactly(tmp_path):
    def make():
        return EvolutionModule(_cnn(), [Unit("4", 0), Unit("0", 1)], PixelGenerator(8), n_generations=12, snapshot_every=4, seed=5)

    _trainer(tmp_path / "full").fit(make())
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_top_k=-1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(tmp_path / "crashed", [ckpt, _Crash(7)], checkpoints=True).fit(make())
    saved = torch.load(tmp_path / "ckpt" / "epoch=0-step=5.ckpt", weights_only=True)
    assert saved["evolution"]["generation"] == 5
    assert not any(k.startswith(("model.", "generator.")) for k in saved["state_dict"])  # frozen weights not stored
    resumed = make()
    _trainer(tmp_path / "resumed").fit(resumed, ckpt_path=tmp_path / "ckpt" / "epoch=0-step=5.ckpt")
    full, again = _scores_csv(tmp_path / "full"), _scores_csv(tmp_path / "resumed")
    assert len(again.read_text().splitlines()) == 1 + 12 * 2
    assert filecmp.cmp(full, again, shallow=False)
    assert resumed.generation == 12


def _dead_channel_cnn(kind: str = "constant", channels=(3,)) -> nn.Sequential:
    net = _cnn()
    with torch.no_grad():
        for c in channels:  # ReLU(conv) channel c: always 0 / NaN whatever the image
            net[0].bias[c] = -1e3 if kind == "constant" else float("nan")
    return net


def _summary(root: Path) -> dict[str, dict]:
    return {row["unit"]: row for row in read_summary(_scores_csv(root).parent / "summary.csv")}


class _Snapshot(Callback):
    """Records the optimiser's mean codes after every generation."""

    def __init__(self) -> None:
        self.means = []

    def on_train_batch_end(self, trainer, module, *args):
        self.means.append(module.evolver.mean.clone())


def test_dead_unit_is_retired_after_its_patience_and_the_others_improve(tmp_path, caplog):
    units = [Unit("4", 0), Unit("1", 3), Unit("4", 2)]
    module = EvolutionModule(_dead_channel_cnn(), units, PixelGenerator(8), n_generations=15, dead_patience=4, seed=2)
    snap = _Snapshot()
    with caplog.at_level("INFO"):
        _trainer(tmp_path, [snap]).fit(module)  # completes: no exception
    assert module.generation == 15
    # generation 0 is one code per unit; generations 1-4 give a constant population -> retired at 4
    assert module.retired_at.tolist() == [-1, 4, -1]
    summary = _summary(tmp_path)
    assert summary["1_3"]["status"] == "retired" and summary["1_3"]["retired_generation"] == "4"
    assert "constant activation 0" in summary["1_3"]["reason"] and "dead_patience 4" in summary["1_3"]["reason"]
    assert {summary[u]["status"] for u in ("4_0", "4_2")} == {"active"}
    assert any("unit 1_3 retired at generation 4" in r.getMessage() for r in caplog.records)
    rows = read_scores(_scores_csv(tmp_path))
    assert max(r["generation"] for r in rows if r["unit"] == "1_3") == 4  # its rows end at retirement
    for label in ("4_0", "4_2"):
        mine = [r for r in rows if r["unit"] == label]
        assert len(mine) == 15 and mine[-1]["best_so_far"] > mine[0]["max"], label
    # the retired unit's optimiser state is frozen from its retirement on (and stays in checkpoints)
    for later in snap.means[5:]:
        torch.testing.assert_close(later[1], snap.means[4][1], rtol=0, atol=0)
    assert not torch.equal(snap.means[-1][0], snap.means[4][0])


def test_nan_activation_is_reported_as_nan_and_retires_the_unit_at_once(tmp_path):
    # (NaN in channel 3 reaches every logit of layer 4, so the live unit reads another ReLU channel)
    module = EvolutionModule(_dead_channel_cnn("nan"), [Unit("1", 0), Unit("1", 3)], PixelGenerator(8), n_generations=6)
    _trainer(tmp_path).fit(module)
    summary = _summary(tmp_path)
    assert summary["1_3"]["retired_generation"] == "0" and summary["1_3"]["reason"] == "NaN activation from the model"
    assert summary["1_0"]["status"] == "active" and module.generation == 6


def test_run_fails_only_when_every_unit_is_retired_and_saves_its_state(tmp_path):
    module = EvolutionModule(_dead_channel_cnn(channels=(2, 3)), [Unit("1", 2), Unit("1", 3)], PixelGenerator(8), n_generations=20, dead_patience=3)
    with pytest.raises(EvolutionStopped, match=r"every unit is retired \(1_2 at generation 3: constant .*; 1_3 at generation 3.*state saved to .*stopped.ckpt"):
        _trainer(tmp_path).fit(module)
    folder = _scores_csv(tmp_path).parent
    state = torch.load(folder / "stopped.ckpt", weights_only=True)
    assert state["evolution"]["generation"] == 4 and state["evolution"]["retired_at"].tolist() == [3, 3]
    assert len(state["evolution"]["optimizer_states"]) == 1 and (folder / "prototypes.pt").is_file()


def test_on_dead_unit_stop_stops_at_the_first_retirement(tmp_path):
    module = EvolutionModule(_dead_channel_cnn(), [Unit("4", 0), Unit("1", 3)], PixelGenerator(8), n_generations=20, dead_patience=2, on_dead_unit="stop")
    with pytest.raises(EvolutionStopped, match=r"on_dead_unit is 'stop' \(1_3 at generation 2"):
        _trainer(tmp_path).fit(module)
    assert module.generation == 3
    with pytest.raises(ConfigError, match="on_dead_unit"):
        EvolutionModule(_cnn(), [Unit("4", 0)], PixelGenerator(8), on_dead_unit="ignore")


def test_channel_auto_picks_a_live_channel_and_a_resumed_run_keeps_it(tmp_path):
    def make(n=8):
        # channels 0, 1 and 3 are dead: only channel 2 responds
        return EvolutionModule(_dead_channel_cnn(channels=(0, 1, 3)), [Unit("1", "auto", name="conv"), Unit("4", 0)], PixelGenerator(8), n_generations=n, seed=3)

    module = make()
    assert module.units[0].channel == 2 and module.units[0].position is not None
    assert module.unit_choices and "channel auto -> channel 2" in module.unit_choices[0]
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    _trainer(tmp_path / "a", [ckpt], checkpoints=True).fit(module)
    assert module.retired_at.tolist() == [-1, -1]
    summary = _summary(tmp_path / "a")
    assert summary["conv"]["chosen"] == "auto" and summary["conv"]["channel"] == "2" and summary["conv"]["position"]
    saved = torch.load(tmp_path / "ckpt" / "epoch=0-step=4.ckpt", weights_only=True)
    assert saved["evolution"]["units"][0]["channel"] == 2
    # a resumed run adopts the checkpoint's choice even where a fresh probe would choose differently
    saved["evolution"]["units"][0]["position"] = [0, 0]
    torch.save(saved, tmp_path / "edited.ckpt")
    resumed = make(n=10)
    _trainer(tmp_path / "b").fit(resumed, ckpt_path=tmp_path / "edited.ckpt")
    assert resumed.units[0].position == (0, 0) and resumed.generation == 10


def test_frozen_networks_are_outside_the_module_tree_and_follow_it(tmp_path):
    module = EvolutionModule(_cnn(), [Unit("4", 0)], PixelGenerator(8))
    assert all(not n.startswith(("model", "generator")) for n, _ in module.named_modules() if n)
    assert list(module.state_dict()) == ["_step_anchor"]
    module.double()
    assert module.model[0].weight.dtype == torch.float64
    module.float().train()
    assert not module.model.training and not module.generator.training


def test_target_model_loads_a_robust_finetune_checkpoint(tmp_path):
    trained = _cnn(seed=7)
    path = tmp_path / "finetune.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in trained.state_dict().items()}, "epoch": 3}, path)
    module = EvolutionModule(_cnn(seed=8), [Unit("4", 0)], PixelGenerator(8), checkpoint=str(path))
    torch.testing.assert_close(module.model[0].weight, trained[0].weight)
    with pytest.raises(ConfigError, match="does not fit"):
        EvolutionModule(nn.Sequential(nn.Flatten(), nn.Linear(192, 2)), [Unit("1", 0)], PixelGenerator(8), checkpoint=str(path))


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="n_generations"):
        EvolutionModule(_cnn(), [Unit("4", 0)], PixelGenerator(8), n_generations=0)
    with pytest.raises(ConfigError, match=r"unknown layer 'clasifier'.*units\[0\]\.layer"):
        EvolutionModule(_cnn(), [Unit("clasifier", 0)], PixelGenerator(8))


def test_optimizer_factory_and_wandb_media(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(WandbLogger, "log_image", lambda self, key, images, **kw: logged.append((key, len(images))))
    monkeypatch.setattr(WandbLogger, "log_metrics", lambda self, metrics, step=None: logged.append(("metrics", step)))
    factory = lambda dim, **kw: PyCMA(dim, population_size=6, diagonal=True, **kw)  # noqa: E731
    module = EvolutionModule(_cnn(), [Unit("4", 0), Unit("4", 1)], PixelGenerator(8), optimizer=factory, n_generations=4, snapshot_every=2)
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=logger, default_root_dir=tmp_path, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module)
    assert isinstance(module.evolver, PyCMA) and module.evolver.population_size == 6
    assert [k for k, _ in logged if k == "evolution/best"] == ["evolution/best"] * 2  # generations 1 and 3
    assert ("evolution/montage", 1) in logged
    assert [s for k, s in logged if k == "metrics"][:4] == [0, 1, 2, 3]


def test_quickstart_config_runs_from_the_neuroalign_command(tmp_path):
    trained = ZooModel("resnet10t", num_classes=10, input_size=32)  # the architecture of configs/quickstart.yaml
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in trained.state_dict().items()}}, ckpt)
    config = Path(__file__).parents[1] / "configs" / "evolution" / "quickstart.yaml"
    args = ["fit", "-c", str(config), "--model.init_args.checkpoint", str(ckpt), "--model.init_args.n_generations", "3"]
    args += ["--trainer.default_root_dir", str(tmp_path), "--trainer.logger.init_args.save_dir", str(tmp_path)]
    assert main(args) == 0
    rows = (tmp_path / "quickstart" / "version_0" / "evolution" / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 4
    assert main(args[:3] + ["--model.init_args.units", "[{layer: head, channel: 10}]"] + args[3:]) == 2  # one-line error


def test_resume_replays_the_compact_cholesky_state_bit_for_bit(tmp_path):
    """Checkpoints hold the rank-1 updates of A and A^-1, not the matrices; a resume replays them exactly."""

    def make():
        factory = lambda dim, **kw: CholeskyCMAES(dim, a_update_freq=2, **kw)  # noqa: E731
        return EvolutionModule(_cnn(), [Unit("4", 0), Unit("0", 1)], PixelGenerator(8), optimizer=factory, n_generations=12, seed=5)

    _trainer(tmp_path / "full").fit(make())
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=7, save_top_k=-1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(tmp_path / "crashed", [ckpt, _Crash(8)], checkpoints=True).fit(make())
    path = tmp_path / "ckpt" / "epoch=0-step=7.ckpt"
    state = torch.load(path, weights_only=True)["evolution"]["optimizer_states"][0]
    assert "a" not in state and state["a_updates"]["v"].shape == (3, 2, 192)  # updates at generations 2, 4, 6
    _trainer(tmp_path / "resumed").fit(make(), ckpt_path=path)
    assert filecmp.cmp(_scores_csv(tmp_path / "full"), _scores_csv(tmp_path / "resumed"), shallow=False)
