"""Fail fast offline: decide within seconds whether a download can work.

Hub clients (huggingface_hub, torch.hub, torchvision datasets) retry for minutes when there is no
network. Every loader in neuroalign asks :func:`require_download` first, so an offline run without a
local copy stops at once with a message naming the file and the config key to set.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from neuroalign.core.errors import MissingFileError

__all__ = ["network_available", "require_download", "OFFLINE_ENV"]

#: set to 1 to declare the machine offline without probing the network
OFFLINE_ENV = "NEUROALIGN_OFFLINE"


@functools.lru_cache(maxsize=32)
def _reachable(host: str, port: int, timeout: float) -> bool:
    try:
        # resolve and connect with a hard timeout; DNS failures answer immediately
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, addr in infos[:2]:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(addr)
                return True
        except OSError:
            continue
    return False


def network_available(url: str = "https://huggingface.co", timeout: float = 3.0) -> bool:
    """Return whether ``url``'s host accepts a TCP connection within ``timeout`` seconds.

    ``NEUROALIGN_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) forces ``False`` without probing.
    The answer is cached per host for the life of the process.
    """
    if os.environ.get(OFFLINE_ENV, "0") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    parsed = urlparse(url if "://" in url else f"https://{url}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return _reachable(parsed.hostname or "", port, timeout)


def require_download(what: str, destination: str | Path | None, config_key: str, url: str, hint: str = "") -> None:
    """Raise :class:`MissingFileError` unless ``url`` can be downloaded from here.

    Args:
        what: what would be downloaded (shown in the error).
        destination: where the file would be stored / where a local copy should be placed.
        config_key: the config key that points at a local copy instead.
        url: the download address (only its host is probed).
        hint: extra sentence for the error message.
    """
    if not network_available(url):
        raise MissingFileError(what, destination, config_key, hint, offline=True)
