"""riskrl explorer: `streamlit run app.py`.

Four views over the same estimator selection (sidebar):
  1. advantage shapes for binary rewards (per prompt, and per bundle for RiskPO),
  2. bandit runs (reward, policy over time, entropy),
  3. tabular-prompt runs (reward, entropy, Cov(log π, A), pass@k, tail risk; mean ± band over seeds),
  4. theorem checks (Proposition 1, Theorem 2, Lemmas 2–4).
Formulas come from theory/, simulations from sandbox/; this file only lays out widgets and figures.
"""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this directory on sys.path, AppTest and other launchers may not.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from app_lib.choices import DEFAULT_ESTIMATORS, Knobs, build_choices, is_quantile_band  # noqa: E402
from app_lib.figures import advantage_shape_figure, bundle_advantage_figure  # noqa: E402
from app_lib.shapes import advantage_vs_accuracy, bundle_accuracies, bundle_advantage_curve  # noqa: E402
from theory import list_estimators  # noqa: E402

VIEWS = ("1 · Advantage shapes", "2 · Bandit runs", "3 · Tabular prompts", "4 · Theorem checks")
RS_BETA_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

st.set_page_config(page_title="riskrl explorer", page_icon="📉", layout="wide")


# --------------------------------------------------------------------------- cached computations


@st.cache_data(show_spinner=False, max_entries=64)
def cached_shapes(names: tuple[str, ...], knobs: Knobs, group_size: int):
    choices, errors = build_choices(names, knobs, per_question=True)
    table, run_errors = advantage_vs_accuracy(choices, group_size)
    return table, errors + run_errors


@st.cache_data(show_spinner=False, max_entries=64)
def cached_bundle_curve(names: tuple[str, ...], knobs: Knobs, accuracies: tuple[float, ...]):
    band_names = tuple(n for n in names if is_quantile_band(n))
    choices, errors = build_choices(band_names, knobs)
    curve, marks, run_errors = bundle_advantage_curve(choices, accuracies)
    return curve, marks, errors + run_errors


@st.cache_data(show_spinner=False, max_entries=32)
def figure_html(fig_json: str) -> bytes:
    """Stand-alone HTML with plotly.js inlined, so the file opens offline."""
    import plotly.io as pio

    return pio.from_json(fig_json).to_html(include_plotlyjs=True, full_html=True).encode()


# --------------------------------------------------------------------------- widgets


def show_errors(errors: list[str]) -> None:
    for message in errors:
        st.error(message, icon="⚠️")


def downloads(stem: str, table: pd.DataFrame, fig=None) -> None:
    left, right, _ = st.columns([1, 1, 4])
    left.download_button(
        f"⬇ {stem}.csv", table.to_csv(index=False).encode(), file_name=f"{stem}.csv", mime="text/csv", key=f"csv_{stem}", on_click="ignore"
    )
    if fig is not None:
        fig_json = fig.to_json()
        right.download_button(
            f"⬇ {stem}.html",
            lambda: figure_html(fig_json),
            file_name=f"{stem}.html",
            mime="text/html",
            key=f"html_{stem}",
            on_click="ignore",
        )


def sidebar() -> tuple[str, tuple[str, ...], Knobs, int]:
    sb = st.sidebar
    sb.title("riskrl explorer")
    view = sb.radio("View", VIEWS, key="view")
    registry = list_estimators()
    names = sb.multiselect(
        "Estimators",
        list(registry),
        default=[n for n in DEFAULT_ESTIMATORS if n in registry],
        format_func=lambda n: n,
        help="\n\n".join(f"**{n}**: {d}" for n, d in registry.items()),
        key="estimators",
    )
    sb.subheader("Estimator parameters")
    alpha = sb.slider("α (lower quantile level)", 0.0, 1.0, 0.2, 0.05, key="alpha")
    beta = sb.slider("β (upper quantile level)", 0.0, 1.0, 0.8, 0.05, key="beta")
    omega = sb.slider("ω (extra lower-tail weight)", 0.0, 3.0, 0.5, 0.1, key="omega")
    bundle_size = sb.slider("B (questions per bundle)", 1, 16, 5, 1, key="bundle_size")
    k = sb.slider("k (pass@k)", 1, 32, 4, 1, key="k")
    rs_beta = sb.select_slider("RS-GRPO β", options=RS_BETA_CHOICES, value=2.0, key="rs_beta")
    extra_betas = sb.multiselect("compare more RS-GRPO β", [b for b in RS_BETA_CHOICES], default=[], key="rs_betas_extra")
    rs_betas = tuple(dict.fromkeys([float(rs_beta)] + [float(b) for b in extra_betas]))
    group_size = sb.slider("G (responses per prompt)", 2, 64, 16, 1, key="group_size")
    knobs = Knobs(alpha=float(alpha), beta=float(beta), omega=float(omega), bundle_size=int(bundle_size), k=int(k), rs_betas=rs_betas)
    return view, tuple(names), knobs, int(group_size)


# --------------------------------------------------------------------------- views


def view_shapes(names: tuple[str, ...], knobs: Knobs, group_size: int) -> None:
    st.header("Advantage shape vs prompt accuracy (binary rewards)")
    st.caption(
        "One prompt, G responses, c of them correct (p̂ = c/G). Each estimator from the theory registry is called on that "
        "reward row. Quantile-band estimators (RiskPO family) are shown in their single-question form "
        "(B = 1, quantiles within the group); their bundled form is below."
    )
    table, errors = cached_shapes(names, knobs, group_size)
    show_errors(errors)
    if table.empty:
        st.info("Pick at least one estimator that accepts these parameters.")
        return
    num_correct = st.slider("inspect c (correct responses)", 0, group_size, min(1, group_size), 1, key="num_correct")
    st.plotly_chart(advantage_shape_figure(table, marked_p_hat=num_correct / group_size), key="fig_shapes")
    shown = table[table["c"] == num_correct][["estimator", "adv_correct", "adv_incorrect", "sum_abs_adv"]].reset_index(drop=True)
    st.markdown(f"**Advantages at c = {num_correct} of G = {group_size} (p̂ = {num_correct / group_size:.4g})**")
    st.dataframe(shown, hide_index=True, key="table_shapes")
    downloads("advantage_vs_accuracy", table, advantage_shape_figure(table))

    st.subheader("Bundled RiskPO: advantage vs bundle score")
    band = [n for n in names if is_quantile_band(n)]
    if not band:
        st.info("Select a quantile-band estimator (riskpo, riskpo_seeking, rvar, cvar) to see the bundle view.")
        return
    low, high = st.slider("accuracies of the B questions in a bundle (spread evenly)", 0.0, 1.0, (0.2, 0.8), 0.05, key="bundle_acc")
    accuracies = tuple(bundle_accuracies(low, high, knobs.bundle_size).tolist())
    st.caption(
        f"Bundle of B = {knobs.bundle_size} questions with accuracies {', '.join(f'{p:.2f}' for p in accuracies)}. "
        "Its score R_B (correct answers, one response per question) is Poisson-binomial; each line is the exact "
        "population advantage at every score, with the exact quantiles q_α, q_β of R_B marked."
    )
    curve, marks, errors = cached_bundle_curve(tuple(band), knobs, accuracies)
    show_errors(errors)
    if curve.empty:
        return
    fig = bundle_advantage_figure(curve, marks)
    st.plotly_chart(fig, key="fig_bundle")
    st.dataframe(marks, hide_index=True, key="table_bundle_quantiles")
    downloads("bundle_advantage", curve, fig)


def view_pending(what: str) -> None:
    st.info(f"{what}: waiting for the sandbox API.")


def main() -> None:
    view, names, knobs, group_size = sidebar()
    if not names:
        st.warning("Select at least one estimator in the sidebar.")
        return
    if view == VIEWS[0]:
        view_shapes(names, knobs, group_size)
    elif view == VIEWS[1]:
        view_pending("Bandit runs")
    elif view == VIEWS[2]:
        view_pending("Tabular prompts")
    else:
        view_pending("Theorem checks")


main()
