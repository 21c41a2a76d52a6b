"""Launch ``streamlit run app.py`` on a free local port and screenshot it with headless Chromium.

A docs/test tool, not part of the app: used by the browser end-to-end test
(tests/app/test_app_browser.py), the render benchmark (benchmarks/bench_app.py) and to
refresh ``docs/screenshot.png``:

    python scripts/app_browser.py docs/screenshot.png [--view shapes] [--min-plots 2]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerURL(str):
    """The server's base URL; ``.pid`` is the server process (for CPU accounting)."""

    pid: int


@contextlib.contextmanager
def streamlit_server(port: int | None = None, timeout: float = 60.0):
    """Yields the base URL (a ``ServerURL``) of a headless ``streamlit run app.py`` bound to
    127.0.0.1; always stops it."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    log = tempfile.TemporaryFile()
    # Own process group, so stopping it also stops anything streamlit spawned.
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = server.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"streamlit exited with {server.returncode}:\n{log.read().decode(errors='replace')[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


# True once the app has drawn its figures and is no longer running a script.
READY_JS = """(() => {
  const plots = document.querySelectorAll('.js-plotly-plot .main-svg').length;
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  const skeleton = document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]');
  return plots >= %d && !running && !skeleton;
})()"""


class _DevTools:
    """Minimal Chrome DevTools Protocol client over the websockets package (a Streamlit dependency)."""

    def __init__(self, socket):
        self.socket = socket
        self.next_id = 0

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})


def _devtools_page_url(process: subprocess.Popen, timeout: float) -> str:
    """Reads chromium's 'DevTools listening on ws://host:port/...' line, returns the first page's socket URL."""
    deadline = time.monotonic() + timeout
    port = None
    while port is None:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("chromium did not open its DevTools port")
        line = process.stderr.readline().decode(errors="replace")
        if "DevTools listening on ws://" in line:
            port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    # Keep draining chromium's log so a full pipe can never block the browser.
    threading.Thread(target=lambda: [None for _ in iter(process.stderr.readline, b"")], daemon=True).start()
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            pages = [t for t in json.load(response) if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        if time.monotonic() > deadline:
            raise RuntimeError("chromium opened no page target")
        time.sleep(0.2)


@dataclass
class Capture:
    """What the browser showed: the PNG path, the page's visible text, and how many
    Streamlit exception boxes (tracebacks) it contained."""

    path: Path
    text: str
    exceptions: int


PAGE_STATE_JS = """JSON.stringify({text: document.body.innerText,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length})"""


@contextlib.contextmanager
def chromium_page(*, chromium: str | None = None, width: int = 1400, height: int = 1000):
    """A headless Chromium with one page, driven over the DevTools protocol; always stopped."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found; install it with scripts/install_browser.sh")
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            from websockets.sync.client import connect

            with connect(_devtools_page_url(browser, timeout=30), max_size=64 * 2**20, open_timeout=30) as socket:
                devtools = _DevTools(socket)
                devtools.pid = browser.pid  # the browser process (its renderers are children)
                devtools.call("Page.enable")
                devtools.call(
                    "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
                )
                yield devtools
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)


def wait_until(
    devtools: _DevTools, expression: str, *, timeout: float = 120.0, interval: float = 0.5, polls: int = 2
) -> float:
    """Poll a JS expression until it is true ``polls`` times in a row; returns the time waited (s)."""
    start = time.monotonic()
    ready = 0
    while ready < polls:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{expression[:80]}... not true within {timeout:.0f}s")
        time.sleep(interval)
        result = devtools.call("Runtime.evaluate", expression=expression, returnByValue=True)
        ready = ready + 1 if result.get("result", {}).get("value") else 0
    return time.monotonic() - start


def screenshot(
    url: str,
    out: Path,
    *,
    chromium: str | None = None,
    width: int = 1400,
    height: int = 1000,
    min_plots: int = 1,
    timeout: float = 120.0,
    settle: float = 1.5,
) -> Capture:
    """Headless Chromium screenshot of ``url`` into ``out`` (PNG) once the app has rendered.

    Chromium's one-shot ``--screenshot`` fires before Streamlit's websocket has
    delivered the page, so the browser is driven over the DevTools protocol:
    load, poll until ``min_plots`` Plotly figures are drawn and no script is
    running (twice in a row: a rerun can start right after the first), let
    animations settle, capture.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with chromium_page(chromium=chromium, width=width, height=height) as devtools:
        devtools.call("Page.navigate", url=url)
        wait_until(devtools, READY_JS % min_plots, timeout=timeout)
        time.sleep(settle)
        shot = devtools.call("Page.captureScreenshot", format="png")
        state = json.loads(
            devtools.call("Runtime.evaluate", expression=PAGE_STATE_JS, returnByValue=True)["result"]["value"]
        )
    out.write_bytes(base64.b64decode(shot["data"]))
    return Capture(path=out, text=state["text"], exceptions=int(state["exceptions"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", default="shapes", help="which view to open (slug, e.g. bandit, or its number)")
    parser.add_argument("--query", default="", help="more URL query, e.g. 'alpha=0.3&k=8'")
    parser.add_argument("--min-plots", type=int, default=1, help="wait until this many Plotly figures are drawn")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    with streamlit_server() as url:
        query = f"view={args.view}" + (f"&{args.query}" if args.query else "")
        capture = screenshot(
            f"{url}/?{query}", args.out, width=args.width, height=args.height, min_plots=args.min_plots
        )
    if capture.exceptions:
        print(f"warning: the page shows {capture.exceptions} exception box(es)", file=sys.stderr)
    print(capture.path)


if __name__ == "__main__":
    main()
