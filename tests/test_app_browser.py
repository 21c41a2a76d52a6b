"""End to end: `streamlit run app.py` served on 127.0.0.1, loaded in headless Chromium, screenshotted.

Slow (browser start-up plus a cold app run), so marked ``slow``; skipped with
a reason when Chromium is not installed (scripts/install_browser.sh installs it).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_browser_tool():
    """scripts/app_browser.py is a tool, not a package module: load it from its path."""
    spec = importlib.util.spec_from_file_location("app_browser", REPO / "scripts" / "app_browser.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app_browser"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_browser = _load_browser_tool()
find_chromium, screenshot, streamlit_server = _browser.find_chromium, _browser.screenshot, _browser.streamlit_server

pytestmark = pytest.mark.slow


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (run scripts/install_browser.sh)")
@pytest.mark.parametrize(
    "view, min_plots, heading",
    [(1, 2, "Advantage shape vs prompt accuracy"), (2, 2, "Bandit runs: softmax policy over arms")],
)
def test_app_renders_in_headless_chromium(tmp_path, view, min_plots, heading):
    from PIL import Image  # pillow ships with streamlit

    out = tmp_path / f"view{view}.png"
    with streamlit_server() as url:
        capture = screenshot(f"{url}/?view={view}", out, width=1400, height=1000, min_plots=min_plots, timeout=180)
    assert capture.exceptions == 0, capture.text[:2000]
    assert heading in capture.text
    assert "riskpo (α=0.2, β=0.8, ω=0.5)" in capture.text  # the sidebar defaults reached the tables
    assert out.stat().st_size > 50_000  # a blank 1400x1000 PNG compresses to a few kB
    pixels = np.asarray(Image.open(out).convert("L"), dtype=np.float64)
    assert pixels.shape == (1000, 1400)
    # Text, axes and coloured traces: measured variance ≈ 800 for the rendered views, ≈ 2 for
    # Streamlit's grey loading skeleton and 0 for a blank page; 200 separates them with margin.
    assert pixels.var() > 200.0
    # Something darker than the light background covers a real fraction of the page (drawn content).
    assert (pixels < 128).mean() > 0.01
