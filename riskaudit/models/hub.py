"""Is the Hugging Face Hub reachable? A quick check, so a missing model fails in seconds, not after retries."""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse

_HUB_PROBE_TIMEOUT_S = 3.0


def env_offline() -> bool:
    """HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set."""
    return any(
        os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = _HUB_PROBE_TIMEOUT_S) -> bool:
    """A quick TCP probe of the hub endpoint (skipped behind a proxy, where the client must try itself)."""
    proxy_vars = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    if any(os.environ.get(k) for k in proxy_vars):
        return True
    try:
        from huggingface_hub import constants

        endpoint = str(constants.ENDPOINT)
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        endpoint = "https://huggingface.co"
    url = urllib.parse.urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)  # name resolution is not bounded by the socket timeout
    return bool(ok and ok[0])
