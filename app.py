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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402

from app_lib.choices import DEFAULT_ESTIMATORS, Choice, Knobs, build_choices, is_quantile_band  # noqa: E402
from app_lib.runs import final_summary, lemma_thresholds, optimal_prob_change_curve, run_each, stack_frames  # noqa: E402
from app_lib.figures import (  # noqa: E402
    advantage_shape_figure,
    band_figure,
    bundle_advantage_figure,
    covariance_gap_figure,
    entropy_residual_figure,
    optimal_prob_change_figure,
    policy_animation_figure,
    standalone_html,
)
from app_lib.shapes import advantage_vs_accuracy, bundle_accuracies, bundle_advantage_curve  # noqa: E402
from theory import list_estimators  # noqa: E402

VIEWS = ("1 · Advantage shapes", "2 · Bandit runs", "3 · Tabular prompts", "4 · Theorem checks")
RS_BETA_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

st.set_page_config(page_title="riskrl explorer", page_icon="📉", layout="wide")


# --------------------------------------------------------------------------- cached computations


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


BANDIT_PRESETS = {
    "3-arm (RS-GRPO Lemma 2: r = 1, 0.8, 0)": "three_arm",
    "100-arm (RS-GRPO §3 two-mode bandit)": "rs_grpo_paper",
}


@st.cache_data(show_spinner=False, max_entries=128)
def cached_bandit_run(choice: Choice, preset: str, settings: tuple, seeds: int):
    """One estimator's bandit run (cached per estimator, so adding a curve reruns only that curve)."""
    from sandbox import BanditConfig, run_bandit

    config = getattr(BanditConfig, preset)(**dict(settings))
    results, errors = run_each(run_bandit, config, [choice], seeds)
    return stack_frames(results, "metrics"), stack_frames(results, "policy"), errors, list(config.rewards)


@st.cache_data(show_spinner=False, max_entries=128)
def cached_tabular_run(choice: Choice, settings: tuple, seeds: int):
    """One estimator's tabular-prompt run, cached per estimator."""
    from sandbox import TabularConfig, run_tabular

    results, errors = run_each(run_tabular, TabularConfig(**dict(settings)), [choice], seeds)
    return stack_frames(results, "metrics"), errors


@st.cache_data(show_spinner=False, max_entries=64)
def cached_claim(name: str, params: tuple) -> dict:
    """One sandbox claim check; the DataFrame-valued extras are dropped (only the table is shown)."""
    from sandbox import CLAIMS

    result = CLAIMS[name](**dict(params))
    return {key: value for key, value in result.items() if not isinstance(value, pd.DataFrame)}


@st.cache_data(show_spinner=False, max_entries=64)
def cached_prob_change_curve(rewards: tuple, probs: tuple, betas: tuple) -> pd.DataFrame:
    return optimal_prob_change_curve(rewards, probs, betas)


@st.cache_data(show_spinner=False, max_entries=32)
def figure_html(fig_json: str) -> bytes:
    """Stand-alone HTML with plotly.js inlined, so the file opens offline."""
    import plotly.io as pio

    return standalone_html(pio.from_json(fig_json)).encode()


# --------------------------------------------------------------------------- widgets


def show_errors(errors: list[str]) -> None:
    for message in errors:
        st.error(message, icon="⚠️")


def downloads(stem: str, table: pd.DataFrame, fig=None) -> None:
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        "⬇ data (CSV)", table.to_csv(index=False).encode(), file_name=f"{stem}.csv", mime="text/csv", key=f"csv_{stem}",
        on_click="ignore", help=f"{stem}.csv", width="stretch",
    )
    if fig is not None:
        fig_json = fig.to_json()
        right.download_button(
            "⬇ figure (HTML)",
            lambda: figure_html(fig_json),
            file_name=f"{stem}.html",
            mime="text/html",
            key=f"html_{stem}",
            on_click="ignore",
            help=f"{stem}.html: interactive Plotly figure, plotly.js inlined (works offline)",
            width="stretch",
        )


def sidebar() -> tuple[str, tuple[str, ...], Knobs, int]:
    sb = st.sidebar
    sb.title("riskrl explorer")
    # ?view=N in the URL opens view N (links, screenshots); the radio takes over afterwards.
    requested = st.query_params.get("view", "1")
    start = int(requested) - 1 if requested.isdigit() and 1 <= int(requested) <= len(VIEWS) else 0
    view = sb.radio("View", VIEWS, index=start, key="view")
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
    curve, marks, bundle_errors = cached_bundle_curve(tuple(band), knobs, accuracies)
    # The same bad parameter (say α >= β) was already explained above for the single-question form.
    already = {message.split(": ", 1)[-1] for message in errors}
    show_errors([message for message in bundle_errors if message.split(": ", 1)[-1] not in already])
    if curve.empty:
        return
    fig = bundle_advantage_figure(curve, marks)
    st.plotly_chart(fig, key="fig_bundle")
    st.dataframe(marks, hide_index=True, key="table_bundle_quantiles")
    with st.expander("advantage at every bundle score"):
        st.dataframe(curve.pivot(index=["score", "prob"], columns="estimator", values="advantage").reset_index(), hide_index=True, key="table_bundle_curve")
    downloads("bundle_advantage", curve, fig)


def run_with_progress(run_one, choices: list[Choice], label: str):
    """Run ``run_one(choice)`` for each choice behind one progress bar; returns their outputs.

    The bar advances per estimator, outside the cached runs: an element created
    out here must not be touched inside an ``st.cache_data`` function (Streamlit
    could not replay it on a cache hit).
    """
    bar = st.progress(0.0, text=label)
    outputs = []
    for i, choice in enumerate(choices):
        bar.progress(i / len(choices), text=f"{label}: {choice.label} ({i + 1}/{len(choices)})")
        outputs.append(run_one(choice))
    bar.empty()
    return outputs


def view_bandit(names: tuple[str, ...], knobs: Knobs) -> None:
    st.header("Bandit runs: softmax policy over arms")
    st.caption(
        "Each estimator trains a softmax policy on a multi-armed bandit (sandbox.run_bandit). "
        "Exact updates use the estimator's population advantage; sampled updates draw a batch of arms. "
        "Bands are ± one standard deviation over seeds (zero for exact updates, which have no randomness)."
    )
    c1, c2, c3, c4 = st.columns(4)
    preset_label = c1.selectbox("problem", list(BANDIT_PRESETS), key="bandit_preset")
    preset = BANDIT_PRESETS[preset_label]
    exact_default = preset == "three_arm"
    update = c2.radio("update", ("exact", "sampled"), index=0 if exact_default else 1, horizontal=True, key="bandit_update")
    batch_size = c2.slider("arms per batch (sampled)", 2, 64, 16, 1, key="bandit_batch", disabled=update == "exact")
    optimizer = c3.selectbox("optimizer", ("sgd", "adam", "natural"), key="bandit_optimizer")
    lr = c3.select_slider("learning rate η", options=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0), value=0.5 if exact_default else 0.1, key="bandit_lr")
    steps = c4.slider("steps", 10, 3000 if preset == "three_arm" else 2000, 300 if exact_default else 1000, 10, key="bandit_steps")
    seeds = c4.slider("seeds", 1, 8, 3, 1, key="bandit_seeds", disabled=update == "exact", help="exact updates are deterministic: one run")
    seeds = 1 if update == "exact" else seeds
    noise = c1.selectbox("reward noise", ("none", "bernoulli"), key="bandit_noise", help="bernoulli: r ~ Bern(μ(arm)), binary rewards as in RLVR")
    settings = dict(lr=float(lr), steps=int(steps), optimizer=optimizer, batch_size=None if update == "exact" else int(batch_size), reward_noise=noise)
    settings["log_every"] = max(1, int(steps) // 200)
    try:
        from sandbox import BanditConfig

        getattr(BanditConfig, preset)(**settings)
    except ValueError as err:
        st.error(f"Invalid bandit settings: {err}", icon="⚠️")
        return
    choices, errors = build_choices(names, knobs, mode="single_prompt")
    outputs = run_with_progress(
        lambda choice: cached_bandit_run(choice, preset, tuple(sorted(settings.items())), int(seeds)),
        choices,
        "bandit runs",
    )
    errors += [e for out in outputs for e in out[2]]
    show_errors(errors)
    metrics = pd.concat([out[0] for out in outputs if not out[0].empty], ignore_index=True) if any(not o[0].empty for o in outputs) else pd.DataFrame()
    if metrics.empty:
        st.info("No estimator could run with these settings.")
        return
    policy = pd.concat([out[1] for out in outputs if not out[1].empty], ignore_index=True)
    arm_rewards = outputs[0][3]
    summary = final_summary(metrics, ["expected_reward", "entropy", "prob_best"])
    st.markdown(f"**At step {int(metrics['step'].max())}** (mean over {seeds} seed(s))")
    st.dataframe(summary, hide_index=True, key="table_bandit")
    fig = band_figure(metrics, [("expected_reward", "expected reward E_π[r]"), ("entropy", "policy entropy H(π)"), ("prob_best", "π(best arm)")])
    st.plotly_chart(fig, key="fig_bandit_metrics")
    downloads("bandit_metrics", metrics, fig)
    st.subheader("Policy over time")
    policy_fig = policy_animation_figure(policy, arm_rewards)
    st.plotly_chart(policy_fig, key="fig_bandit_policy")
    downloads("bandit_policy", policy, policy_fig)


TABULAR_FIELDS = [
    ("mean_reward", "mean reward (pass@1 of the policy)"),
    ("entropy", "policy entropy H(π)"),
    ("cov_logp_adv", "Cov(log π, A)"),
    ("pass_at_1", "pass@1"),
    ("pass_at_k", "pass@k"),
    ("rvar_lower", "lower-tail RVaR of bundle scores"),
    ("mvar", "MVaR of bundle scores"),
    ("cvar", "CVaR_α of bundle scores"),
    ("frac_zero_adv_groups", "share of zero-advantage groups"),
]


def view_tabular(names: tuple[str, ...], knobs: Knobs, group_size: int) -> None:
    st.header("Tabular prompts: an LLM stand-in with verifiable rewards")
    st.caption(
        "P prompts, each a softmax over M candidate responses of known correctness (sandbox.run_tabular). Every step samples "
        "G responses per prompt, computes advantages with each estimator (bundles and quantile tracking included) and takes a "
        "policy-gradient step. Lines are means over seeds, bands ± one standard deviation. pass@k uses the sidebar k; the "
        "bundle-score risk metrics use the sidebar α, β, ω."
    )
    c1, c2, c3, c4 = st.columns(4)
    num_prompts = c1.slider("prompts P", 5, 120, 40, 5, key="tab_prompts", help="must be a multiple of the bundle size B")
    responses = c1.slider("candidate responses M per prompt", 2, 64, 16, 1, key="tab_responses")
    difficulty = c2.selectbox("difficulty", ("uniform", "easy", "hard", "bimodal"), key="tab_difficulty")
    reward_type = c2.selectbox("reward", ("binary", "graded"), key="tab_reward")
    rho = c3.slider("correctness correlation ρ of the initial policy", -1.0, 1.0, 0.3, 0.1, key="tab_rho")
    lr = c3.select_slider("learning rate η", options=(0.05, 0.1, 0.2, 0.5, 1.0, 2.0), value=0.5, key="tab_lr")
    steps = c4.slider("steps", 10, 400, 150, 10, key="tab_steps")
    seeds = c4.slider("seeds", 1, 8, 3, 1, key="tab_seeds")
    with st.expander("more simulator settings"):
        e1, e2, e3 = st.columns(3)
        peak = e1.slider("initial logit sharpness (peak)", 0.0, 8.0, 3.0, 0.5, key="tab_peak")
        clipped = e2.checkbox("PPO-style clipped updates", value=False, key="tab_clip")
        clip_eps = e2.slider("clip ε", 0.05, 0.5, 0.2, 0.05, key="tab_clip_eps", disabled=not clipped)
        ppo_epochs = e3.slider("gradient steps per batch (clipped)", 1, 8, 2, 1, key="tab_ppo_epochs", disabled=not clipped)
    settings = dict(
        num_prompts=int(num_prompts), responses_per_prompt=int(responses), group_size=int(group_size), steps=int(steps), lr=float(lr),
        correctness_correlation=float(rho), difficulty=difficulty, reward_type=reward_type, k=int(knobs.k),
        risk_alpha=knobs.alpha, risk_beta=knobs.beta, risk_omega=knobs.omega, log_every=max(1, int(steps) // 150),
        peak=float(peak), clip_eps=float(clip_eps) if clipped else None, ppo_epochs=int(ppo_epochs),
    )
    try:
        from sandbox import TabularConfig

        TabularConfig(**settings)
    except ValueError as err:
        st.error(f"Invalid tabular settings: {err}", icon="⚠️")
        return
    choices, errors = build_choices(names, knobs, mode="bundled")
    outputs = run_with_progress(
        lambda choice: cached_tabular_run(choice, tuple(sorted(settings.items())), int(seeds)), choices, "tabular runs"
    )
    errors += [e for out in outputs for e in out[1]]
    show_errors(errors)
    frames = [out[0] for out in outputs if not out[0].empty]
    if not frames:
        st.info("No estimator could run with these settings.")
        return
    metrics = pd.concat(frames, ignore_index=True)
    fields = [(f, t.replace("pass@k", f"pass@{knobs.k}")) for f, t in TABULAR_FIELDS if f in metrics and metrics[f].notna().any()]
    summary = final_summary(metrics, [f for f, _ in fields])
    st.markdown(f"**At step {int(metrics['step'].max())}** (mean and std over {seeds} seed(s))")
    st.dataframe(summary, hide_index=True, key="table_tabular")
    fig = band_figure(metrics, fields)
    st.plotly_chart(fig, key="fig_tabular")
    downloads("tabular_metrics", metrics, fig)


def claim_status(result: dict) -> None:
    text = f"**{result['claim']}** ({result['paper']}): {result['measured']}"
    (st.success if result["holds"] else st.warning)(("✓ holds. " if result["holds"] else "✗ does not hold here. ") + text)


def view_theorems(knobs: Knobs) -> None:
    st.header("Theorem checks")
    st.caption("Exact computations under known softmax policies (sandbox claims); no sampling noise.")

    st.subheader("RiskPO Proposition 1: first-order entropy change")
    c1, c2 = st.columns(2)
    instances = c1.slider("random instances", 8, 512, 64, 8, key="prop1_instances")
    actions = c2.slider("actions per instance", 2, 100, 20, 1, key="prop1_actions")
    prop1 = cached_claim("prop1_entropy_residual", (("num_actions", int(actions)), ("seeds", int(instances))))
    claim_status(prop1)
    prop1_table = pd.DataFrame(prop1["table"])
    fig = entropy_residual_figure(prop1_table)
    st.plotly_chart(fig, key="fig_prop1")
    st.dataframe(prop1_table, hide_index=True, key="table_prop1")
    downloads("prop1_entropy_residual", prop1_table, fig)

    st.subheader("RiskPO Theorem 2: Cov(log π, A_MVaR) vs Cov(log π, A_mean) and Assumption 1")
    st.caption(f"Quantile levels and ω from the sidebar: α = {knobs.alpha:g}, β = {knobs.beta:g}, ω = {knobs.omega:g}.")
    c1, c2 = st.columns(2)
    thm2_instances = c1.slider("random instances per family", 100, 4000, 2000, 100, key="thm2_instances")
    responses = c2.slider("responses per instance", 3, 30, 10, 1, key="thm2_responses")
    try:
        thm2 = cached_claim(
            "thm2_covariance",
            (("alpha", knobs.alpha), ("beta", knobs.beta), ("num_responses", int(responses)), ("omega", knobs.omega), ("seeds", int(thm2_instances))),
        )
    except ValueError as err:
        st.error(f"Theorem 2 check: {err}", icon="⚠️")
    else:
        claim_status(thm2)
        m1, m2, m3 = st.columns(3)
        m1.metric("instances satisfying Assumption 1", f"{thm2['satisfied']}")
        m2.metric("… of which Cov_MVaR ≤ Cov_mean", f"{thm2['satisfied_ordered']}")
        m3.metric("ordering fails without Assumption 1", f"{thm2['violated_failure_rate']:.1%}")
        thm2_table = pd.DataFrame(thm2["table"])
        fig = covariance_gap_figure(thm2_table)
        st.plotly_chart(fig, key="fig_thm2")
        st.dataframe(thm2_table, hide_index=True, key="table_thm2")
        downloads("thm2_covariance", thm2_table, fig)

    st.subheader("RS-GRPO Lemmas 2–4: change of π(a*) vs β")
    st.caption(
        "Three actions with rewards (1, r₂, 0); one exact policy-gradient step on the RS-GRPO objective. "
        "Lemma 2: at β = 0 the step can lower π(a*); Lemma 3: beyond some β₀ it always raises it; "
        "Lemma 4: beyond β₁ the increase shrinks like 1/β."
    )
    c1, c2, c3 = st.columns(3)
    r2 = c1.slider("reward r₂ of the runner-up", 0.05, 0.95, 0.8, 0.05, key="lemma_r2")
    p_best = c2.slider("π(a*) (best action)", 0.01, 0.9, 0.05, 0.01, key="lemma_pbest")
    p_second = c3.slider("π(a₂) (runner-up)", 0.01, 0.98, 0.9, 0.01, key="lemma_psecond")
    p_worst = 1.0 - p_best - p_second
    if p_worst <= 0:
        st.error(f"π(a*) + π(a₂) = {p_best + p_second:.2f} must be < 1 so that the worst action keeps positive probability.", icon="⚠️")
    else:
        rewards, probs = (1.0, float(r2), 0.0), (float(p_best), float(p_second), float(p_worst))
        betas = tuple(float(b) for b in np.logspace(-2, 3, 201))
        curve = cached_prob_change_curve(rewards, probs, betas)
        at_zero = float(cached_prob_change_curve(rewards, probs, (0.0,))["d_pi_star"].iloc[0])
        marks = lemma_thresholds(curve)
        m1, m2, m3 = st.columns(3)
        m1.metric("Δπ(a*) at β = 0", f"{at_zero:.6g}")
        m2.metric("β₀ (Δπ(a*) > 0 from here on)", f"{marks['beta0']:.3g}")
        m3.metric("β₁ (largest Δπ(a*))", f"{marks['beta1']:.3g}")
        fig = optimal_prob_change_figure(curve, {"β₀": marks["beta0"], "β₁": marks["beta1"]})
        st.plotly_chart(fig, key="fig_lemmas")
        downloads("rs_lemmas_prob_change", curve, fig)
        with st.expander("Lemma 3/4 on random 6-action instances"):
            lemma_instances = st.slider("instances", 20, 500, 200, 20, key="lemma_instances")
            rows = []
            for name in ("rs_lemma2", "rs_lemma3", "rs_lemma4"):
                result = cached_claim(name, (("seeds", int(lemma_instances)),) if name != "rs_lemma2" else ())
                rows.append({"claim": result["claim"], "holds": result["holds"], "measured": result["measured"]})
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="table_lemmas")


def main() -> None:
    view, names, knobs, group_size = sidebar()
    if not names:
        st.warning("Select at least one estimator in the sidebar.")
        return
    if view == VIEWS[0]:
        view_shapes(names, knobs, group_size)
    elif view == VIEWS[1]:
        view_bandit(names, knobs)
    elif view == VIEWS[2]:
        view_tabular(names, knobs, group_size)
    else:
        view_theorems(knobs)


# Every tensor here is tiny (a few arms, a few dozen prompts): intra-op threads only add
# synchronisation, which costs ~100x per op on a busy 2-core machine. Restored afterwards
# because AppTest runs this script inside the caller's process.
_threads = torch.get_num_threads()
torch.set_num_threads(1)
try:
    main()
finally:
    torch.set_num_threads(_threads)
