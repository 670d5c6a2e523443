"""The peer of the benchmark (`bench.run --peer litellm`): the LiteLLM proxy, the gateway
users would pick instead, in front of the same fake upstream and measured in the same rounds.

It is installed from bench/requirements-peer.txt into its own venv, bench/.venv-peer, on first
use (it pins its own FastAPI, pydantic and uvicorn, which must not touch the service's venv),
and run with one worker, no database, no master key, telemetry off and the local model cost
map (no network at start). The load generators read it as an OpenAI stream, as they read
the upstream directly."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench.proc import PYTHON, ROOT, Proc, free_port, http_json, log

VENV = ROOT / "bench" / ".venv-peer"
REQUIREMENTS = ROOT / "bench" / "requirements-peer.txt"
CONFIG = """model_list:
  - model_name: fake-model
    litellm_params:
      model: openai/fake-model
      api_base: {fake}/v1
      api_key: bench
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: {key}
"""


def ensure_venv() -> Path:
    """bench/.venv-peer/bin/litellm, created and installed when missing."""
    exe = VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    log(f"peer: creating {VENV} from {REQUIREMENTS.name} (once; a few minutes)")
    base = os.path.realpath(PYTHON) if os.path.exists(PYTHON) else sys.executable
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    done = subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)], capture_output=True, text=True
    )
    if done.returncode != 0 or not exe.exists():
        raise RuntimeError(f"peer: pip install -r {REQUIREMENTS} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return exe


def start(kind: str, work: Path, fake_url: str, cpus: set[int] | None) -> Proc:
    """The peer, ready and pinned; its master key (which it refuses to start without, and
    checks on every request without a database) in extra["token"]."""
    if kind != "litellm":
        raise ValueError(f"unknown peer {kind!r}")
    exe = ensure_venv()
    port = free_port()
    config = work / "litellm-config.yaml"
    key = f"sk-bench-{secrets.token_hex(16)}"
    config.write_text(CONFIG.format(fake=fake_url, key=key))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL")}
    env.update(
        {
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "PYTHONUNBUFFERED": "1",
            "DISABLE_ADMIN_UI": "True",
        }
    )
    cmd = [
        str(exe),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]
    peer = Proc("litellm", cmd, env, work / "litellm.log", None).start()
    base = f"http://127.0.0.1:{port}"
    peer.extra.update(port=port, base=base, workers=1, deflate=False, env={}, cmd=" ".join(cmd[1:]), token=key)
    deadline = time.monotonic() + 120  # its import alone takes tens of seconds on this machine
    while time.monotonic() < deadline:
        if not peer.alive():
            raise RuntimeError(f"peer litellm exited during start-up:\n{peer.tail()}")
        try:
            if http_json("GET", f"{base}/health/liveliness", timeout=2)[0] == 200:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    else:
        peer.kill()
        raise RuntimeError(f"peer litellm did not become ready:\n{peer.tail()}")
    peer.cpus = cpus
    peer.repin()
    log(f"peer litellm: {peer.extra['cmd']} (pid {peer.pid})")
    return peer
