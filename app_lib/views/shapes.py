"""View 1: advantage shapes for binary rewards (per prompt) and RiskPO's bundled form."""

from __future__ import annotations

import streamlit as st

from app_lib import memo, state
from app_lib.choices import Knobs, build_choices, is_quantile_band
from app_lib.figures import advantage_shape_figure, bundle_advantage_figure
from app_lib.shapes import advantage_vs_accuracy, bundle_accuracies, bundle_advantage_curve
from app_lib.ui import chart, downloads, explain, show_errors
from app_lib.views import Context, register_view


@st.cache_data(show_spinner=False, max_entries=64)
def cached_shapes(names: tuple[str, ...], knobs: Knobs, group_size: int):
    choices, errors = build_choices(names, knobs, mode="per_question")
    table, run_errors = advantage_vs_accuracy(choices, group_size)
    return table, errors + run_errors


@st.cache_data(show_spinner=False, max_entries=64)
def cached_bundle_curve(names: tuple[str, ...], knobs: Knobs, accuracies: tuple[float, ...]):
    band_names = tuple(n for n in names if is_quantile_band(n))
    choices, errors = build_choices(band_names, knobs)
    curve, marks, run_errors = bundle_advantage_curve(choices, accuracies)
    return curve, marks, errors + run_errors


@register_view("shapes", "1 · Advantage shapes", order=10)
def render(ctx: Context) -> None:
    names, knobs, group_size = ctx.names, ctx.knobs, ctx.group_size
    st.header("Advantage shape vs prompt accuracy (binary rewards)")
    st.caption(
        "One prompt, G responses, c of them correct (p̂ = c/G). Each estimator from the theory registry is called on "
        "that "
        "reward row. Quantile-band estimators (RiskPO family) are shown in their single-question form "
        "(B = 1, quantiles within the group); their bundled form is below."
    )
    table, errors = cached_shapes(names, knobs, group_size)
    show_errors(errors)
    if table.empty:
        st.info("Pick at least one estimator that accepts these parameters.")
        return
    # Clamped, not reset, when G changes (a smaller G keeps c = min(c, G)).
    num_correct = state.clamp_and_slider(st, "inspect c (correct responses)", 0, group_size, 1, 1, key="num_correct")
    fig = memo.get_or_build(
        ("shapes", names, knobs, group_size, num_correct),
        lambda: advantage_shape_figure(table, marked_p_hat=num_correct / group_size),
    )
    chart(st, fig, "fig_shapes")
    shown = table[table["c"] == num_correct][["estimator", "adv_correct", "adv_incorrect", "sum_abs_adv"]].reset_index(
        drop=True
    )
    st.markdown(f"**Advantages at c = {num_correct} of G = {group_size} (p̂ = {num_correct / group_size:.4g})**")
    st.dataframe(shown, hide_index=True, key="table_shapes")
    explain(
        "RS-GRPO §4 (Fig. 2b): as β grows, the exponential-utility advantage puts more weight on correct answers to "
        "hard "
        "prompts (low p̂) and less penalty on wrong answers to easy ones; GRPO's total weight Σ|A| peaks at p̂ = ½.",
        "binary rewards, one group of G responses; no bundling (B = 1) for the RiskPO family in this panel.",
        "read Σ|A| (right): the p̂ where an estimator peaks is where it spends its gradient. Risk-seeking estimators "
        "(RS-GRPO large β, pass@k) peak at low p̂; riskpo with B = 1 gives no signal when every response fails.",
    )
    downloads("advantage_vs_accuracy", table, fig)

    st.subheader("Bundled RiskPO: advantage vs bundle score")
    band = [n for n in names if is_quantile_band(n)]
    if not band:
        st.info("Select a quantile-band estimator (riskpo, riskpo_seeking, rvar, cvar) to see the bundle view.")
        return
    low, high = state.slider(
        st, "accuracies of the B questions in a bundle (spread evenly)", 0.0, 1.0, (0.2, 0.8), 0.05, key="bundle_acc"
    )
    accuracies = tuple(bundle_accuracies(low, high, knobs.bundle_size).tolist())
    st.caption(
        f"Bundle of B = {knobs.bundle_size} questions with accuracies {', '.join(f'{p:.2f}' for p in accuracies)}. "
        "Its score R_B (correct answers, one response per question) is Poisson-binomial; each line is the exact "
        "population advantage at every score, with the exact quantiles q_α, q_β of R_B marked."
    )
    curve, marks, bundle_errors = cached_bundle_curve(tuple(band), knobs, accuracies)
    # The same bad parameter (say α >= β) was already explained above for the single-question form.
    already = {message.split(": ", 1)[-1] for message in errors}
    show_errors([message for message in bundle_errors if message.split(": ", 1)[-1] not in already])
    if curve.empty:
        return
    fig = memo.get_or_build(("bundle", tuple(band), knobs, accuracies), lambda: bundle_advantage_figure(curve, marks))
    chart(st, fig, "fig_bundle")
    st.dataframe(marks, hide_index=True, key="table_bundle_quantiles")
    with st.expander("advantage at every bundle score"):
        st.dataframe(
            curve.pivot(index=["score", "prob"], columns="estimator", values="advantage").reset_index(),
            hide_index=True,
            key="table_bundle_curve",
        )
    explain(
        "RiskPO §4.1: a bundle of B questions is scored by R_B, its number of correct answers; the MVaR advantage is "
        "−(1+ω)(q_α − z)⁺ plus the RVaR band term, so scores below q_α get the largest negative weight.",
        "one response per question in the bundle, questions independent (R_B Poisson-binomial), exact quantiles.",
        "a bundle whose questions all fail still gets a non-zero advantage when q_α > 0 — the signal GRPO loses on "
        "all-fail prompts. Move α, β, ω in the sidebar to see the kinks move with q_α and q_β.",
    )
    downloads("bundle_advantage", curve, fig)
