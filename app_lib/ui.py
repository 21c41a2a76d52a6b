"""Small pieces every view uses: error boxes, downloads that carry their settings, progress, words."""

from __future__ import annotations

import contextlib
import html
import json
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from . import state


def show_errors(errors: list[str]) -> None:
    for message in dict.fromkeys(errors):
        st.error(message, icon="⚠️")


def settings_header(values: dict) -> dict:
    """What an export records: the widget values and the URL query that reproduces the view."""
    return {
        "tool": "riskrl explorer (streamlit run app.py)",
        "exported_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url_query": "?" + state.query_string(values),
        "settings": {key: list(v) if isinstance(v, tuple) else v for key, v in values.items()},
    }


def csv_with_settings(table: pd.DataFrame, header: dict) -> bytes:
    """CSV whose first lines are ``# key: value`` comments (read back with ``pd.read_csv(f, comment="#")``)."""
    lines = [
        f"# {key}: {json.dumps(value, default=str) if not isinstance(value, str) else value}"
        for key, value in header.items()
    ]
    return ("\n".join(lines) + "\n" + table.to_csv(index=False)).encode()


def read_settings(csv_bytes: bytes) -> dict:
    """The header of ``csv_with_settings`` back as a dict (the inverse, for scripts and tests)."""
    out = {}
    for line in csv_bytes.decode().splitlines():
        if not line.startswith("# "):
            break
        key, value = line[2:].split(": ", 1)
        try:
            out[key] = json.loads(value) if key not in ("tool", "exported_utc", "url_query") else value
        except json.JSONDecodeError:
            out[key] = value
    return out


def html_with_settings(fig, header: dict) -> bytes:
    """Stand-alone figure (plotly.js inlined, opens offline) with its settings in a <pre> under it
    and as JSON in ``<script id="riskrl-settings">``."""
    from .figures import standalone_html

    page = standalone_html(fig)
    block = (
        '<pre style="font:12px '
        f'monospace;white-space:pre-wrap">{html.escape(json.dumps(header, indent=1, default=str))}</pre>\n'
        '<script type="application/json" '
        f'id="riskrl-settings">{html.escape(json.dumps(header, default=str))}</script>\n'
    )
    return page.replace("</body>", block + "</body>", 1).encode()


def downloads(stem: str, table: pd.DataFrame, fig=None, provenance: dict | None = None) -> None:
    """CSV and HTML buttons. Both files are built only when clicked (a rerun builds nothing) and
    carry every widget value shown so far, the URL that redraws the figure, and ``provenance``
    (e.g. the simulator settings and command of a precomputed preset)."""
    header = settings_header(state.settings())
    if provenance:
        header["provenance"] = provenance
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        "⬇ data (CSV)",
        lambda: csv_with_settings(table, header),
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=f"csv_{stem}",
        on_click="ignore",
        help=f"{stem}.csv, settings in its # header lines",
        width="stretch",
    )
    if fig is not None:
        right.download_button(
            "⬇ figure (HTML)",
            lambda: html_with_settings(fig, header),
            file_name=f"{stem}.html",
            mime="text/html",
            key=f"html_{stem}",
            on_click="ignore",
            width="stretch",
            help=f"{stem}.html: interactive Plotly figure, plotly.js inlined (works offline), settings below it",
        )


@contextlib.contextmanager
def progress_bar(label: str):
    """Yields ``report(fraction)`` that moves a progress bar (at most once per percent); removed at the end."""
    bar = st.progress(0.0, text=label)
    shown = [-1]

    def report(fraction: float) -> None:
        percent = int(100 * min(max(fraction, 0.0), 1.0))
        if percent != shown[0]:
            shown[0] = percent
            bar.progress(percent / 100, text=f"{label}: {percent}%")

    try:
        yield report
    finally:
        bar.empty()


def explain(theorem: str, assumptions: str, conclusion: str, erratum: str | None = None) -> None:
    """The words under a check: what is claimed, under what, and what to conclude from the figure."""
    text = f"**Claim.** {theorem}  \n**Assumptions.** {assumptions}  \n**What to conclude.** {conclusion}"
    if erratum:
        text += f"  \n**Erratum.** {erratum}"
    st.info(text, icon=":material/menu_book:")


def lemma_marks(marks: dict, at_zero: float, zero_label: str) -> None:
    """Δπ(a*) at β = 0 and the Lemma 3/4 thresholds of ``runs.lemma_thresholds``, as three metrics."""
    m1, m2, m3 = st.columns(3)
    m1.metric(zero_label, f"{at_zero:.6g}")
    m2.metric("β₀ (Δπ(a*) > 0 from here on)", f"{marks['beta0']:.3g}")
    m3.metric("β₁ (Δπ(a*) never rises again from here on)", f"{marks['beta1']:.3g}")
