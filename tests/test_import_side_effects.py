"""Importing the app's module does nothing (issue 18.7): no settings read, no logging
configured, no thread started, no file written; `main.app` is built on first access only,
and `create_app` leaves process-wide logging alone (the entry points configure it)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, logging, sys, threading
import main
from config import get_settings
report = {
    "settings_reads": get_settings.cache_info().currsize,
    "root_handlers": len(logging.getLogger().handlers),
    "root_level": logging.getLogger().level,
    "access_filters": len(logging.getLogger("uvicorn.access").filters),
    "threads": threading.active_count(),
    "app_built": "app" in vars(main),
}
if "--touch-app" in sys.argv:
    app = main.app
    report["lazy_app"] = type(app).__name__
    report["same_app"] = main.app is app
    report["root_handlers_after"] = len(logging.getLogger().handlers)
print(json.dumps(report))
"""


def _probe(tmp_path: Path, *args: str) -> dict:
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data"), "OLLAMA_PROBE_TIMEOUT": "0"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_importing_main_builds_nothing(tmp_path: Path) -> None:
    report = _probe(tmp_path)
    assert report == {
        "settings_reads": 0,
        "root_handlers": 0,
        "root_level": 30,
        "access_filters": 0,
        "threads": 1,
        "app_built": False,
    }
    assert not (tmp_path / "data").exists()  # no database, no secret key file


def test_main_app_is_built_once_on_first_access(tmp_path: Path) -> None:
    report = _probe(tmp_path, "--touch-app")
    assert (report["lazy_app"], report["same_app"]) == ("FastAPI", True)
    assert report["root_handlers_after"] == 1  # `uvicorn main:app` is an entry point: it sets logging up


def test_create_app_configures_no_logging(tmp_path: Path) -> None:
    code = (
        "import logging, main; from tests.support import make_settings; from pathlib import Path; "
        f"main.create_app(make_settings(Path({str(tmp_path)!r}))); print(len(logging.getLogger().handlers))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "0"
