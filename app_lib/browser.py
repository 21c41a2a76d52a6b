"""Launch ``streamlit run app.py`` on a free local port and screenshot it with headless Chromium.

Used by the browser end-to-end test and to refresh ``docs/screenshot.png``:

    python -m app_lib.browser docs/screenshot.png [--view 1] [--wait 40]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


@contextlib.contextmanager
def streamlit_server(port: int | None = None, timeout: float = 60.0):
    """Yields the base URL of a headless ``streamlit run app.py`` bound to 127.0.0.1; always stops it."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]
    log = tempfile.TemporaryFile()
    # Own process group, so stopping it also stops anything streamlit spawned.
    server = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read().decode(errors='replace')[-3000:]}")
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


def screenshot(url: str, out: Path, *, chromium: str | None = None, width: int = 1400, height: int = 1000,
               wait_ms: int = 30_000, timeout: float = 180.0) -> Path:
    """Headless Chromium screenshot of ``url`` into ``out`` (PNG) after ``wait_ms`` of virtual time."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found; install it with scripts/install_browser.sh")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            # Without this flag the shot is taken before Streamlit's websocket has delivered the page.
            "--run-all-compositor-stages-before-draw",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}",
            f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}", url,
        ]
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not out.exists():
        raise RuntimeError(f"chromium exited without writing {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--view", type=int, default=1, help="which view (1-4) to open")
    parser.add_argument("--wait", type=int, default=30, help="seconds of virtual time chromium waits before the shot")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    with streamlit_server() as url:
        path = screenshot(f"{url}/?view={args.view}", args.out, width=args.width, height=args.height, wait_ms=args.wait * 1000)
    print(path)


if __name__ == "__main__":
    main()
