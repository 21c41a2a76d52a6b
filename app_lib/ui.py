"""Small pieces every view uses: error boxes, downloads that carry their settings, progress, words."""

from __future__ import annotations

import contextlib
import html
import json
import re
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from . import state

#: Simulator and estimator argument names -> the controls a user sets them with.
USER_NAMES = {
    "set batch_size=None": "choose update = exact",
    "batch_size=None": "update = exact",
    "set batch_size for sampled updates": "choose update = sampled",
    "set batch_size": "choose update = sampled",
    "risk_alpha": "α (sidebar)",
    "risk_beta": "β (sidebar)",
    "risk_omega": "ω (sidebar)",
    "num_prompts": "prompts P",
    "responses_per_prompt": "candidate responses M",
    "group_size": "G (sidebar)",
    "bundle_size": "B (sidebar)",
    "metric_bundle_size": "B (sidebar)",
    "correctness_correlation": "correctness correlation ρ",
    "clip_eps": "clip ε",
    "ppo_epochs": "gradient steps per batch",
    "reward_noise": "reward noise",
    "log_every": "logging interval",
}
_USER_NAME = re.compile("|".join(re.escape(k) for k in sorted(USER_NAMES, key=len, reverse=True)))


def user_words(message: str) -> str:
    """An error message with the code's argument names replaced by the controls' names
    (``risk_alpha`` -> "α (sidebar)", ``batch_size=None`` -> "update = exact")."""
    # The label before the message already says which estimator; drop the constructor's repr.
    message = re.sub(r"estimator \w+\([^)]*\): ", "", str(message))
    return _USER_NAME.sub(lambda m: USER_NAMES[m.group(0)], message)


RISKPO = "https://arxiv.org/abs/2510.00911"
RS_GRPO = "https://arxiv.org/abs/2509.24261"
#: chart key -> (what the figure shows, its source in the papers, the paper's address).
FIGURE_SOURCES = {
    "fig_shapes": ("Advantage of one group vs its accuracy", "RS-GRPO §4, Fig. 2b", RS_GRPO),
    "fig_bundle": ("Bundled RiskPO advantage vs bundle score", "RiskPO §4.1, MVaR advantage", RISKPO),
    "fig_bandit_metrics": ("Bandit training curves", "RS-GRPO Lemmas 2–3 and §3", RS_GRPO),
    "fig_bandit_policy": ("Policy over the arms during training", "RS-GRPO §3", RS_GRPO),
    "fig_tabular": ("Tabular-prompt training curves", "RiskPO Prop. 1 and Thm 2", RISKPO),
    "fig_tabular_passk": ("pass@k vs k after training", "RiskPO and RS-GRPO pass@k results", RS_GRPO),
    "fig_prop1": ("First-order entropy change", "RiskPO Proposition 1", RISKPO),
    "fig_thm2": ("Cov(log π, A_MVaR) vs Cov(log π, A_mean)", "RiskPO Theorem 2, Assumption 1", RISKPO),
    "fig_thm2_points": ("Theorem 2 per instance", "RiskPO Theorem 2", RISKPO),
    "fig_lemmas": ("Change of π(a*) vs β", "RS-GRPO Lemmas 2–4", RS_GRPO),
    "fig_sweep": ("Final metric vs one parameter", "RS-GRPO Lemma 4; RiskPO Thm 2, Table 4", RISKPO),
    "fig_preset_rs_bandit": ("100-arm bandit, β sweep", "RS-GRPO §3, Fig. 3", RS_GRPO),
    "fig_preset_entropy": ("Entropy and risk measures vs steps", "RiskPO §6, Fig. 5–6", RISKPO),
    "fig_preset_bundle": ("Bundle-size sweep", "RiskPO Table 4", RISKPO),
    "fig_preset_passk": ("pass@k vs k", "RiskPO and RS-GRPO pass@k results", RS_GRPO),
    "fig_preset_lemma2": ("The three-armed example", "RS-GRPO Lemma 2", RS_GRPO),
    "compare_curves": ("Real-model training curves", "RiskPO Fig. 5–6 (entropy, reward)", RISKPO),
    "compare_passk": ("Real-model pass@k vs k", "RiskPO and RS-GRPO pass@k results", RS_GRPO),
}


#: The toolbar's camera button saves the figure as SVG (vector, for papers), drawn in the browser: no
#: server-side image engine (kaleido) is needed. The HTML download keeps the interactive figure.
IMAGE_EXPORT = {"toImageButtonOptions": {"format": "svg", "scale": 1}, "displaylogo": False}


_PREPARED = "_riskrl_prepared"  # attribute of a figure: its plotly dict, built once


class PreparedFigure(go.Figure):
    """A figure already turned into plotly's dict. ``st.plotly_chart`` calls ``to_dict()`` on a figure
    object (a deep copy and a base64 pass over every array, ~0.03 s per figure here, on every rerun);
    this one hands back the dict it was made from. Not a usable go.Figure otherwise."""

    def __init__(self, spec: dict):  # no go.Figure.__init__: nothing is validated again
        self.__dict__["_spec"] = spec

    def to_dict(self) -> dict:
        return self.__dict__["_spec"]


def prepared(fig) -> PreparedFigure:
    """``fig`` as Streamlit will send it, converted once per figure object (figures kept by ``memo``
    are read-only; ``chart`` sets their title once and drops the stale conversion when it does)."""
    ready = fig.__dict__.get(_PREPARED)
    if ready is None:
        ready = PreparedFigure(fig.to_dict())
        fig.__dict__[_PREPARED] = ready
    return ready


def chart(where, fig, key: str) -> None:
    """``where.plotly_chart`` with the figure's title saying what it shows and where in the papers it
    comes from (a link). Set once: a figure kept by ``memo`` already has it on later reruns (the
    title depends on the key only, so sessions sharing the figure would write the same value)."""
    what, source, address = FIGURE_SOURCES[key]
    title = f"{what}<br><sup>{source} · <a href='{address}'>{address.rsplit('/', 1)[-1]}</a></sup>"
    if fig.layout.title.text != title:
        top = max(int(fig.layout.margin.t or 0), 95)
        # The toolbar goes down the right edge, so it never covers the title.
        fig.update_layout(
            title=dict(text=title, x=0.0, xanchor="left", y=0.98, yanchor="top"), margin_t=top, modebar_orientation="v"
        )
        fig.__dict__.pop(_PREPARED, None)
    where.plotly_chart(prepared(fig), key=key, config=IMAGE_EXPORT)


def show_errors(errors: list[str]) -> None:
    for message in dict.fromkeys(user_words(e) for e in errors):
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
    (HTML-escaped, for people) and as plain JSON in ``<script type="application/json"
    id="riskrl-settings">`` (for scripts: ``json.loads`` of the element's text). Inside a script
    element only ``</`` could end it early, so that is written ``<\\/``, which JSON reads back as ``</``."""
    from .figures import standalone_html

    page = standalone_html(fig)
    text = json.dumps(header, indent=1, default=str)
    script_safe = text.replace("</", "<\\/")
    block = (
        f'<pre style="font:12px monospace;white-space:pre-wrap">{html.escape(text)}</pre>\n'
        f'<script type="application/json" id="riskrl-settings">{script_safe}</script>\n'
    )
    return page.replace("</body>", block + "</body>", 1).encode()


def read_html_settings(page: bytes | str) -> dict:
    """The JSON settings block of ``html_with_settings`` back as a dict (for scripts and tests)."""
    from html.parser import HTMLParser

    class Finder(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.text = False, []

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "script" and dict(attrs).get("id") == "riskrl-settings"

        def handle_endtag(self, tag):
            self.inside = False

        def handle_data(self, data):
            if self.inside:
                self.text.append(data)

    finder = Finder()
    finder.feed(page.decode() if isinstance(page, bytes) else page)
    if not finder.text:
        raise ValueError("no <script id='riskrl-settings'> block in this page")
    return json.loads("".join(finder.text))


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


_MARKDOWN_SPECIAL = re.compile(r"(?<![*\\])\*(?!\*)|[_$~]")


def plain(text: str) -> str:
    """Formula text made literal for Streamlit's Markdown: ``_`` (``π'_β``, ``J_β``), ``$`` (LaTeX),
    ``~`` and lone ``*`` are escaped, so subscripts stay subscripts and nothing turns italic; ``**bold**``
    and `code` spans are kept as written."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(
        part if part.startswith("`") else _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), part) for part in parts
    )


def explain(theorem: str, assumptions: str, conclusion: str, erratum: str | None = None) -> None:
    """The words under a check: what is claimed, under what, and what to conclude from the figure."""
    theorem, assumptions, conclusion = plain(theorem), plain(assumptions), plain(conclusion)
    text = f"**Claim.** {theorem}  \n**Assumptions.** {assumptions}  \n**What to conclude.** {conclusion}"
    if erratum:
        text += f"  \n**Erratum.** {plain(erratum)}"
    st.info(text, icon=":material/menu_book:")


def lemma_marks(marks: dict, at_zero: float, zero_label: str) -> None:
    """Δπ(a*) at β = 0 and the Lemma 3/4 thresholds of ``runs.lemma_thresholds``, as three metrics."""
    m1, m2, m3 = st.columns(3)
    m1.metric(zero_label, f"{at_zero:.6g}")
    m2.metric("β₀ (Δπ(a*) > 0 from here on)", f"{marks['beta0']:.3g}")
    m3.metric("β₁ (Δπ(a*) never rises again from here on)", f"{marks['beta1']:.3g}")
