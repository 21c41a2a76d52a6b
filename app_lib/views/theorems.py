"""View 4: theorem checks (sandbox claims), each with its statement, assumptions and what to conclude.

The words come from the claim registry when it provides them (fields ``statement``,
``assumptions``, ``conclusion``, ``erratum`` on the registered claim or in its result),
and from the short texts below otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_lib import memo, state
from app_lib.choices import Knobs
from app_lib.figures import covariance_gap_figure, entropy_residual_figure, optimal_prob_change_figure
from app_lib.figures_paper import thm2_scatter_figure
from app_lib.runs import lemma_thresholds, optimal_prob_change_curve
from app_lib.ui import chart, downloads, explain, lemma_marks, plain
from app_lib.views import Context, register_view

#: Family names of the Theorem 2 instances, in words (sandbox.claims.riskpo_covariance.random_instances;
#: "u"/"free" were the names before the claim registry).
FAMILIES = {
    "u_shaped": "u_shaped: graded rewards, log π a random parabola in r (+ noise)",
    "lm_like": "lm_like: rewards piled at 0 and 1 like a base model's accuracies, log π rising towards both tails",
    "random": "random: graded rewards, i.i.d. N(0, 4) logits (no structure)",
    "tail_mass": "tail_mass: constructed to meet Assumption 1 with mass below q_α and above q_β (non-trivial)",
    "u": "u: log π U-shaped in the reward (Assumption 1's regime)",
    "free": "free: unstructured random logits",
}
#: Assumption 1 count names (the registry's ``assumption_counts``), in words.
COUNT_WORDS = {
    "instances": "instances generated",
    "literal": "satisfy Assumption 1 as printed",
    "literal_ordered": "… and obey Cov_MVaR ≤ Cov_mean",
    "finite_moment": "satisfy E|log π| < ∞",
    "signs_only": "satisfy only the weaker covariance-sign condition of the proof",
    "violated": "violate Assumption 1",
    "violated_failed": "… of which Cov_MVaR > Cov_mean",
    "literal_not_signs": "satisfy Assumption 1 but not the sign condition",
    "literal_tail_mass": "satisfy Assumption 1 with mass below q_α and above q_β",
    "trivial": "satisfy Assumption 1 trivially (gap exactly 0)",
    "nontrivial": "satisfy Assumption 1 non-trivially (gap ≠ 0)",
    "nontrivial_ordered": "… of which Cov_MVaR < Cov_mean strictly",
}

FALLBACK_WORDS = {
    "prop1_entropy_residual": (
        "RiskPO Proposition 1: one natural-gradient step θ ← θ + ηA changes the entropy by −η·Cov_π(log π, A) + O(η²).",
        "tabular softmax policy, any advantage A; η → 0.",
        "|residual|/η² levels off at ½H''(0) while |residual/η² − ½H''(0)| falls like η (slope 1 on log–log axes): the "
        "first-order term is exact and the remainder is second order.",
    ),
    "thm2_covariance": (
        "RiskPO Theorem 2: under Assumption 1, Cov_π(log π, A_MVaR) ≤ Cov_π(log π, A_mean), so with Prop. 1 RiskPO's "
        "step lowers entropy less than a mean-based step.",
        "Assumption 1: ψ(r) = E[log π | R = r] is non-increasing below q_α, non-decreasing above q_β, and ψ(q_α), "
        "ψ(q_β) "
        "≥ E[log π]; E|log π| < ∞.",
        "every instance satisfying Assumption 1 should have share 1.0 (green bars); without it the order fails on a "
        "visible "
        "share (red), so the assumption is doing real work.",
    ),
    "rs_lemmas": (
        "RS-GRPO Lemma 2: the standard PG step can lower π(a*) when a sub-optimal action beats the mean; Lemma 3: "
        "beyond "
        "some β₀ the risk-seeking step always raises it; Lemma 4: beyond β₁ the increase shrinks as β grows.",
        "softmax bandit, unique optimal action, bounded rewards, one exact policy-gradient step.",
        "the red points (Δπ(a*) < 0) sit at small β only; β·Δπ(a*) flattening out shows the 1/β decay of Lemma 4.",
    ),
}


@st.cache_data(show_spinner=False, max_entries=64)
def cached_claim(name: str, params: tuple) -> dict:
    """One sandbox claim check; DataFrame-valued extras are dropped (too large to cache and not shown)."""
    from sandbox import CLAIMS

    result = CLAIMS[name](**dict(params))
    return {key: value for key, value in result.items() if not isinstance(value, pd.DataFrame)}


@st.cache_data(show_spinner=False, max_entries=64)
def cached_prob_change_curve(rewards: tuple, probs: tuple, betas: tuple) -> pd.DataFrame:
    return optimal_prob_change_curve(rewards, probs, betas)


WORD_FIELDS = ("statement", "assumptions", "conclusion", "erratum")


def registry_words(name: str, result: dict | None = None) -> dict[str, str]:
    """The claim registry's text fields for ``name`` (from ``sandbox.claims.get_claim`` or the
    result dict); empty where the registry does not have them (read defensively: the registry
    is newer than this view)."""
    entry = None
    try:
        from sandbox.claims import get_claim

        entry = get_claim(name)
    except (ImportError, KeyError, ValueError):
        pass
    fields = {}
    for field in WORD_FIELDS:
        value = getattr(entry, field, None) or (result or {}).get(field)
        if isinstance(value, str) and value.strip():
            fields[field] = value
    return fields


def words(name: str, result: dict | None = None, parts: tuple[str, ...] = ()) -> None:
    """``explain`` with the registry's words (of ``name``, or of each claim in ``parts`` joined), else the fallback."""
    statement, assumptions, conclusion = FALLBACK_WORDS.get(name, ("", "", ""))
    found = [registry_words(part) for part in parts] if parts else [registry_words(name, result)]
    if found and all(f.get("statement") for f in found):
        joined = {
            field: " ".join(
                f"{part.replace('rs_lemma', 'Lemma ') + ': ' if parts else ''}{f[field]}"
                for part, f in zip(parts or (name,), found)
                if f.get(field)
            )
            for field in WORD_FIELDS
        }
        explain(
            joined["statement"],
            joined["assumptions"] or assumptions,
            joined["conclusion"] or conclusion,
            joined["erratum"] or None,
        )
    else:
        explain(statement, assumptions, conclusion)


def claim_status(result: dict) -> None:
    text = f"**{plain(result['claim'])}** ({plain(result['paper'])}): {plain(result['measured'])}"
    (st.success if result["holds"] else st.warning)(
        ("✓ holds. " if result["holds"] else "✗ does not hold here. ") + text
    )


@register_view("theorems", "4 · Theorem checks", order=40, needs_estimators=False, sidebar=("alpha", "beta", "omega"))
def render(ctx: Context) -> None:
    st.header("Theorem checks")
    st.caption("Exact computations under known softmax policies (sandbox claims); no sampling noise.")
    proposition_1()
    theorem_2(ctx.knobs)
    theorem_3()
    rs_lemmas()


def proposition_1() -> None:
    st.subheader("RiskPO Proposition 1: first-order entropy change")
    c1, c2 = st.columns(2)
    instances = state.slider(c1, "random instances", 8, 512, 64, 8, key="prop1_instances")
    actions = state.slider(c2, "actions per instance", 2, 100, 20, 1, key="prop1_actions")
    prop1 = cached_claim("prop1_entropy_residual", (("num_actions", int(actions)), ("seeds", int(instances))))
    claim_status(prop1)
    table = pd.DataFrame(prop1["table"])
    fig = memo.get_or_build(
        ("prop1", instances, actions), lambda: entropy_residual_figure(table, limit=prop1.get("curvature_scale"))
    )
    chart(st, fig, "fig_prop1")
    st.dataframe(table, hide_index=True, key="table_prop1")
    words("prop1_entropy_residual", prop1)
    downloads("prop1_entropy_residual", table, fig)


def theorem_2(knobs: Knobs) -> None:
    st.subheader("RiskPO Theorem 2: Cov(log π, A_MVaR) vs Cov(log π, A_mean) and Assumption 1")
    st.caption(f"Quantile levels and ω from the sidebar: α = {knobs.alpha:g}, β = {knobs.beta:g}, ω = {knobs.omega:g}.")
    c1, c2 = st.columns(2)
    instances = state.slider(c1, "random instances per family", 100, 4000, 2000, 100, key="thm2_instances")
    responses = state.slider(c2, "responses per instance", 3, 30, 10, 1, key="thm2_responses")
    params = (
        ("alpha", knobs.alpha),
        ("beta", knobs.beta),
        ("num_responses", int(responses)),
        ("omega", knobs.omega),
        ("seeds", int(instances)),
    )
    try:
        thm2 = cached_claim("thm2_covariance", params)
    except ValueError as err:
        st.error(f"Theorem 2 check: {err}", icon="⚠️")
        return
    claim_status(thm2)
    families = list(dict.fromkeys(row["instances"] for row in thm2["table"]))
    st.caption("Instance families: " + "; ".join(FAMILIES.get(f, f) for f in families) + ".")
    m1, m2, m3 = st.columns(3)
    m1.metric("instances satisfying Assumption 1", f"{thm2['satisfied']}")
    m2.metric("… of which Cov_MVaR ≤ Cov_mean", f"{thm2['satisfied_ordered']}")
    m3.metric("ordering fails without Assumption 1", f"{thm2['violated_failure_rate']:.1%}")
    if "nontrivial" in thm2:
        n1, n2, n3 = st.columns(3)
        n1.metric("trivial (gap exactly 0: no mass beyond q_α, q_β)", f"{thm2['trivial']}")
        n2.metric("non-trivial (gap ≠ 0: the inequality is tested)", f"{thm2['nontrivial']}")
        n3.metric("strictly ordered: Cov_MVaR < Cov_mean (non-trivial)", f"{thm2['nontrivial_holds']}")
    table = pd.DataFrame(thm2["table"])
    fig = memo.get_or_build(("thm2", params), lambda: covariance_gap_figure(table))
    chart(st, fig, "fig_thm2")
    st.dataframe(table, hide_index=True, key="table_thm2")
    counts = thm2.get("assumption_counts")
    if isinstance(counts, dict):
        st.markdown("**Assumption 1, counted literally** (each clause checked on the exact law of every instance)")
        st.dataframe(
            pd.DataFrame({"instances that …": [COUNT_WORDS.get(k, k) for k in counts], "count": list(counts.values())}),
            hide_index=True,
            key="table_thm2_counts",
        )
    if thm2.get("points"):
        points = pd.DataFrame(thm2["points"])
        points = points.rename(columns={"family": "instances"}) if "family" in points else points
        with st.expander(
            f"per-instance values (first {len(points) // max(points['instances'].nunique(), 1)} of each family)"
        ):
            chart(
                st, memo.get_or_build(("thm2_points", params), lambda: thm2_scatter_figure(points)), "fig_thm2_points"
            )
            st.dataframe(points, hide_index=True, key="table_thm2_points")
    if isinstance(thm2.get("counterexample_without_assumption"), dict):
        with st.expander("an instance violating Assumption 1 where the inequality fails"):
            st.json(thm2["counterexample_without_assumption"])
    extras = {
        k: v
        for k, v in thm2.items()
        if k
        not in (
            "table",
            "points",
            "claim",
            "paper",
            "measured",
            "holds",
            "statement",
            "assumptions",
            "conclusion",
            "erratum",
        )
        and isinstance(v, (int, float, str, bool))
    }
    with st.expander("every measured number of this check"):
        st.dataframe(
            pd.DataFrame({"quantity": list(extras), "value": [str(v) for v in extras.values()]}),
            hide_index=True,
            key="table_thm2_extras",
        )
    words("thm2_covariance", thm2)
    theorem_verdict(
        "under Assumption 1, Cov(log π, A_MVaR) ≤ Cov(log π, A_mean) (Theorem 2).",
        thm2["holds"],
        f"{thm2.get('nontrivial_holds', '?')}/{thm2.get('nontrivial', '?')} non-trivial instances obey it strictly "
        f"({thm2.get('trivial', '?')} more meet it with equality only)",
    )
    downloads("thm2_covariance", table, fig)


def theorem_verdict(paper: str, holds: bool, measured: str, contradiction: str = "") -> None:
    """The paper's sentence next to the measured verdict; a contradiction said in plain words."""
    text = f"**The paper says:** {paper}  \n**Measured:** {measured}."
    if holds:
        st.success(text + "  \n**Verdict: holds.**")
    else:
        # a warning, not st.error: a measured contradiction is a result, not an input error
        st.warning(
            text + f"  \n**Verdict: fails. This contradicts the paper:** {contradiction}", icon=":material/report:"
        )


def theorem_3() -> None:
    st.subheader("RiskPO Theorem 3: tail transforms g₁, g₂ (paper erratum)")
    instances = state.slider(st, "random instances per family", 100, 3000, 1500, 100, key="thm3_instances")
    try:
        thm3 = cached_claim("thm3_tail_transforms", (("seeds", int(instances)),))
    except ValueError as err:
        st.error(f"Theorem 3 check: {err}", icon="⚠️")
        return
    claim_status(thm3)
    m1, m2, m3 = st.columns(3)
    m1.metric("(instance, pair) cases meeting every hypothesis", f"{thm3['cases']}")
    m2.metric("trivial (equality)", f"{thm3.get('trivial', '?')}")
    m3.metric("non-trivial: printed fails strictly", f"{thm3.get('nontrivial_erratum', '?')}")
    table = pd.DataFrame(thm3["table"])
    st.dataframe(table, hide_index=True, key="table_thm3")
    words("thm3_tail_transforms", thm3)
    theorem_verdict(
        "if g₁′ ≥ g₂′ above F⁻¹(β) and g₁ = g₂ below, then Cov(SF, g₂(R)) ≥ Cov(SF, g₁(R)) (Theorem 3 as printed).",
        thm3["holds"],
        f"the printed inequality fails strictly on {thm3.get('printed_fails', '?')} of {thm3['cases']} cases "
        f"({thm3.get('nontrivial_instances', '?')} distinct non-trivial instances); the reversed inequality "
        f"Cov(SF, g₁(R)) ≥ Cov(SF, g₂(R)) holds on {thm3['corrected_holds']}/{thm3['cases']}",
        "the steeper transform gives the larger covariance, the opposite of the printed sign (a sign slip in the "
        "last display of the proof, App. A.4); the corrected form holds on every case.",
    )
    downloads("thm3_tail_transforms", table)


def rs_lemmas() -> None:
    st.subheader("RS-GRPO Lemmas 2–4: change of π(a*) vs β")
    st.caption("Three actions with rewards (1, r₂, 0); one exact policy-gradient step on the RS-GRPO objective.")
    c1, c2, c3 = st.columns(3)
    r2 = state.slider(c1, "reward r₂ of the runner-up", 0.05, 0.95, 0.8, 0.05, key="lemma_r2")
    p_best = state.slider(c2, "π(a*) (best action)", 0.01, 0.9, 0.05, 0.01, key="lemma_pbest")
    p_second = state.slider(c3, "π(a₂) (runner-up)", 0.01, 0.98, 0.9, 0.01, key="lemma_psecond")
    p_worst = 1.0 - p_best - p_second
    if p_worst <= 0:
        st.error(
            f"π(a*) + π(a₂) = {p_best + p_second:.2f} must be < 1 so that the worst action keeps positive probability.",
            icon="⚠️",
        )
        return
    rewards, probs = (1.0, float(r2), 0.0), (float(p_best), float(p_second), float(p_worst))
    betas = tuple(float(b) for b in np.logspace(-2, 3, 201))
    curve = cached_prob_change_curve(rewards, probs, betas)
    at_zero = float(cached_prob_change_curve(rewards, probs, (0.0,))["d_pi_star"].iloc[0])
    marks = lemma_thresholds(curve)
    lemma_marks(marks, at_zero, "Δπ(a*) at β = 0")
    fig = memo.get_or_build(
        ("lemmas", rewards, probs),
        lambda: optimal_prob_change_figure(curve, {"β₀": marks["beta0"], "β₁": marks["beta1"]}),
    )
    chart(st, fig, "fig_lemmas")
    words("rs_lemmas", parts=("rs_lemma2", "rs_lemma3", "rs_lemma4"))
    downloads("rs_lemmas_prob_change", curve, fig)
    with st.expander("Lemma 3/4 on random 6-action instances"):
        lemma_instances = state.slider(st, "instances", 20, 500, 200, 20, key="lemma_instances")
        rows = []
        for name in ("rs_lemma2", "rs_lemma3", "rs_lemma4"):
            result = cached_claim(name, (("seeds", int(lemma_instances)),) if name != "rs_lemma2" else ())
            rows.append({"claim": result["claim"], "holds": result["holds"], "measured": result["measured"]})
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="table_lemmas")
