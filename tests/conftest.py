"""Shared test setup: no W&B, no Brain-Score side effects, few threads, tiny everything."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("BS_INSTALL_DEPENDENCIES", "no")
os.environ.setdefault("RESULTCACHING_DISABLE", "1")
os.environ.setdefault("NEUROALIGN_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

#: pytest-xdist workers share the cores: each gets its share of threads (oversubscribed tiny ops stall)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


def pytest_collection_modifyitems(session, config, items):
    """Slow end-to-end tests first, so a parallel run does not end waiting on one of them (order kept otherwise)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # with --no-loadscope-reorder, xdist keeps this order


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests: tiny ops on a busy shared CPU run many times slower on more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolate_home(tmp_path_factory, monkeypatch):
    """Keep caches (BrainIO, torch hub) of a test away from the user's home."""
    home = tmp_path_factory.getbasetemp() / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("BRAINIO_HOME", str(home / ".brainio"))
    monkeypatch.setenv("TORCH_HOME", str(home / ".torch"))
    yield


@pytest.fixture(autouse=True)
def _finish_wandb_runs():
    """A W&B run left open by one test would be reused by the next WandbLogger (wandb.init returns it)."""
    yield
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
