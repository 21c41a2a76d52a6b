"""Explorer render times measured in a real browser (headless Chromium over the DevTools protocol).

    python benchmarks/bench_app.py [--repeats 3] [--json out.json]

Each repeat starts a fresh ``streamlit run app.py`` (empty caches, fresh interpreter) and a
fresh browser, then times, from the navigation or the click to the moment the page shows the
new view's heading and figures with no script running and no stale element:

    first render       open ?view=shapes (imports torch/plotly/sandbox, computes view 1)
    new bandit run     click "2 · Bandit runs" (3-arm problem, default settings, 6 estimators)
    new tabular run    click "3 · Tabular prompts" (default settings, 6 estimators)
    pass@k vs k        tick "compute pass@k for k = 1 … 256" on the tabular view
    cached re-render   click back to view 1, then to view 2 (every result is in the cache)
    view switch        click "5 · Paper presets" (precomputed figures: a plain view switch)

The goals of issue 20 (2 cores): first render <= 3 s, any view switch <= 1 s, new tabular or
bandit run <= 1.5 s, pass@k vs k <= 2 s, cached re-render <= 0.5 s. Report the minimum over repeats: the machine is
shared, and other load only ever adds time. Polling every 30 ms adds up to ~0.06 s.
The CPU seconds of the server (Python) and of the browser (all Chromium processes) spent
in each step are printed too: on a busy machine they say what the page costs when the
wall clock cannot (they include the poller's own DevTools calls, a few ms).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("app_browser", REPO / "scripts" / "app_browser.py")
browser = importlib.util.module_from_spec(spec)
sys.modules["app_browser"] = browser
spec.loader.exec_module(browser)

SHOWN_JS = """(() => {
  const heading = [...document.querySelectorAll('h1, h2')].some(h => h.innerText.startsWith(%s));
  const plots = document.querySelectorAll('.js-plotly-plot').length;
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  const stale = document.querySelector('[data-stale="true"]');
  return heading && plots >= %d && !running && !stale;
})()"""

CLICK_JS = """(() => {
  const label = [...document.querySelectorAll('[data-testid="stSidebar"] label')].find(l => l.innerText.trim() === %s);
  if (!label) return false;
  label.click();
  return true;
})()"""

CHECKBOX_JS = """(() => {
  const box = [...document.querySelectorAll('[data-testid="stCheckbox"]')]
    .find(b => b.innerText.trim().startsWith(%s));
  const input = box && box.querySelector('input');
  if (!input) return false;
  input.click();
  return true;
})()"""

STEPS = [  # (name, what to click: None = navigate, a sidebar view title, or ("checkbox", label start), heading, plots)
    ("first render", None, "Advantage shape", 2),
    ("new bandit run (3-arm)", "2 · Bandit runs", "Bandit runs", 2),
    ("new tabular run", "3 · Tabular prompts", "Tabular prompts", 1),
    ("pass@k vs k", ("checkbox", "compute pass@k"), "Tabular prompts", 2),
    ("cached re-render (view 1)", "1 · Advantage shapes", "Advantage shape", 2),
    ("cached re-render (view 2)", "2 · Bandit runs", "Bandit runs", 2),
    ("view switch (presets)", "5 · Paper presets", "Paper presets", 1),
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (alive ones)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def one_repeat() -> dict[str, float]:
    times = {}
    with browser.streamlit_server() as url, browser.chromium_page() as devtools:
        for name, title, heading, plots in STEPS:
            server_cpu, browser_cpu = cpu_seconds(url.pid), cpu_seconds(devtools.pid)
            start = time.monotonic()
            if title is None:
                devtools.call("Page.navigate", url=f"{url}/?view=shapes")
            else:
                script = (
                    CHECKBOX_JS % json.dumps(title[1]) if isinstance(title, tuple) else CLICK_JS % json.dumps(title)
                )
                clicked = devtools.call("Runtime.evaluate", expression=script, returnByValue=True)
                if not clicked["result"]["value"]:
                    raise RuntimeError(f"no element {title!r} to click")
            try:
                browser.wait_until(
                    devtools, SHOWN_JS % (json.dumps(heading), plots), timeout=180, interval=0.03, polls=2
                )
            except TimeoutError:
                shot = devtools.call("Page.captureScreenshot", format="png")
                failed = Path(tempfile.gettempdir()) / "bench_app_timeout.png"
                failed.write_bytes(base64.b64decode(shot["data"]))
                raise TimeoutError(f"step {name!r} did not finish within 180 s (page: {failed})") from None
            times[name] = time.monotonic() - start
            times[f"{name} | server CPU"] = cpu_seconds(url.pid) - server_cpu
            times[f"{name} | browser CPU"] = cpu_seconds(devtools.pid) - browser_cpu
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args()
    runs = []
    for i in range(args.repeats):
        runs.append(one_repeat())
        print(f"repeat {i + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in runs[-1].items()), flush=True)
    print(
        f"\n{'step':28s} {'wall min':>9s} {'median':>7s} {'server CPU':>11s} {'browser CPU':>12s}  (CPU: min over "
        "repeats)"
    )
    for name, *_ in STEPS:
        values = [r[name] for r in runs]
        server = min(r[f"{name} | server CPU"] for r in runs)
        client = min(r[f"{name} | browser CPU"] for r in runs)
        print(f"{name:28s} {min(values):9.2f} {statistics.median(values):7.2f} {server:11.2f} {client:12.2f}")
    if args.json:
        args.json.write_text(json.dumps({"repeats": runs}, indent=1))


if __name__ == "__main__":
    main()
