"""Run one step on rank zero while the other ranks wait outside any collective (DDP-safe scoring).

A scoring pass can outlast the process group's timeout. If the other ranks waited for rank zero in a
collective (a broadcast, or the next step's gradient all-reduce), the collective would time out and
kill the run. :func:`share_from_rank_zero` instead lets rank zero run the step and publish its
JSON-serialisable result in the process group's key-value store; the other ranks poll the store
(``Store.check``, which returns at once, so no timeout applies) and read the same result, so every
rank logs the same values. Without an initialised process group the step simply runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
from torch.distributed import distributed_c10d

from neuroalign.core.errors import ConfigError

__all__ = ["default_store", "share_from_rank_zero"]


def default_store() -> Any | None:
    """The default process group's key-value store, or ``None`` when no process group is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return distributed_c10d._get_default_store()  # the default store has no public accessor


def share_from_rank_zero(
    compute: Callable[[], Any],
    key: str,
    store: Any | None = None,
    poll_seconds: float = 0.2,
) -> Any:
    """``compute()`` on rank zero; every rank returns its (JSON round-tripped) result.

    Args:
        compute: the step; its result must be JSON-serialisable.
        key: a key no earlier call used (e.g. ``brainscore/score/<n>``).
        store: the key-value store (default: :func:`default_store`; ``None`` runs ``compute`` directly).
        poll_seconds: how often waiting ranks look for the result.

    Raises:
        Exception: on rank zero, what ``compute`` raised; on the other ranks, a one-line
            :class:`~neuroalign.core.errors.ConfigError` with its message (every rank stops together).
    """
    store = store if store is not None else default_store()
    if store is None:
        return compute()
    if dist.get_rank() == 0:
        try:
            result = compute()
        except Exception as err:  # noqa: BLE001 -- published to the other ranks, then re-raised here
            store.set(key, json.dumps({"error": str(err)}))
            raise
        store.set(key, json.dumps({"result": result}))
        return json.loads(json.dumps(result))
    while not store.check([key]):
        time.sleep(poll_seconds)
    payload = json.loads(store.get(key))
    if "error" in payload:
        raise ConfigError(payload["error"])
    return payload["result"]
