"""Helpers for the browser tests: the real server as a subprocess, a small REST client, and
page actions (sign in, send, wait for a reply) on the web UI."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"
FINAL = ("completed", "cancelled", "incomplete", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`python -m serve` in a subprocess, on a free port, with its own DATA_DIR."""

    def __init__(self, data_dir: Path, **env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "DATA_DIR": str(data_dir),
            "TIME_BETWEEN_CHUNKS": "0.05",
            **{k.upper(): str(v) for k, v in env.items()},
        }
        self.log_path = data_dir.parent / f"uvicorn-{self.port}.log"
        self.proc = None

    def start(self, timeout: float = 45.0) -> "LiveServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /health within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "log", None):
            self.log.close()


class Api:
    """The public REST API, as one user. tests/conftest.py closes every one after its test."""

    opened: list["Api"] = []

    def __init__(self, base: str, username: str | None = None):
        self.base = base
        self.username = username or f"u{uuid.uuid4().hex[:10]}"
        self.http = httpx.Client(base_url=base, timeout=20)
        self.token = None
        Api.opened.append(self)

    @classmethod
    def close_all(cls) -> None:
        while cls.opened:
            cls.opened.pop().http.close()

    def signup(self) -> "Api":
        r = self.http.post("/users", json={"username": self.username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        return self.login()

    def login(self) -> "Api":
        r = self.http.post("/token", data={"username": self.username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.token = r.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        return self

    def create_session(self, **cfg) -> dict:
        body = {"model_name": "offline/simulated", "temperature": 0.7, "max_tokens": 1024, "top_p": 1, **cfg}
        r = self.http.post("/set-llm", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def generation(self, generation_id: str) -> dict:
        r = self.http.get(f"/generations/{generation_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def session(self, session_id: str) -> dict:
        r = self.http.get(f"/sessions/{session_id}")
        assert r.status_code == 200, r.text
        return r.json()


# ---- page actions ---------------------------------------------------------------------------


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/")
    page.fill("#login-username", username)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    page.wait_for_function("document.getElementById('session-list') !== null")


def open_session(page, session_id: str) -> None:
    page.click(f"[data-session-id='{session_id}'] .session-open")
    page.wait_for_function("id => location.hash === '#/s/' + id", arg=session_id)


def set_mode(page, mode: str) -> None:
    """Picks the streaming transport in the settings panel (WebSocket or SSE) and closes it."""
    page.get_by_role("button", name="Settings", exact=True).click()
    page.wait_for_selector("#app-settings[open]")
    page.click(f"label[for=mode-{mode}]")
    page.click("#app-settings-close")
    page.wait_for_selector("#app-settings", state="hidden")


# Text inside a message is read with text_content(), not inner_text(): messages have
# `content-visibility: auto`, so until the browser's next rendering step a message just added
# has its contents skipped, and innerText reads '' there (a loaded machine makes that window long).


def send(page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def assistants(page):
    return page.locator("[data-role=assistant]")


def wait_status(page, index: int, statuses, timeout: float = 30000) -> str:
    """Waits until the index-th assistant message has one of the given data-status values."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    page.wait_for_function(
        """([i, st]) => { const m = document.querySelectorAll('[data-role=assistant]')[i];
                          return !!m && st.includes(m.dataset.status); }""",
        arg=[index, list(statuses)],
        timeout=timeout,
    )
    return assistants(page).nth(index).get_attribute("data-status")


def wait_seq(page, index: int, at_least: int, timeout: float = 20000) -> None:
    page.wait_for_function(
        """([i, n]) => { const m = document.querySelectorAll('[data-role=assistant]')[i];
                         return !!m && Number(m.dataset.seq || 0) >= n; }""",
        arg=[index, at_least],
        timeout=timeout,
    )


def rendered_text_of(page, markdown: str) -> str:
    """textContent of the UI's own Markdown rendering of `markdown` (same module, same options)."""
    return page.evaluate(
        """async (text) => { const m = await import('/static/js/markdown.js');
                             const d = document.createElement('div'); d.append(m.renderMarkdown(text));
                             return d.textContent; }""",
        markdown,
    )


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
