"""View 3: tabular-prompt runs (sandbox.run_tabular), pass@k vs k, one cached run per estimator."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_lib import memo, state
from app_lib.choices import Choice, Knobs, build_choices
from app_lib.figures_paper import passk_figure
from app_lib.passk_curve import K_GRID, curves_from_runs, passk_vs_k
from app_lib.runs import final_summary
from app_lib.simulate import all_cached, cached_runs, frames
from app_lib.ui import chart, downloads, explain, progress_bar, show_errors, user_words
from app_lib.views import Context, register_view
from sandbox.plots import band_figure

UNIT = (0.0, 1.0)
#: (column, panel title, possible range of the quantity: the ±std band is drawn inside it).
TABULAR_FIELDS = [
    ("mean_reward", "mean reward", UNIT),
    ("entropy", "policy entropy H(π)", (0.0, None)),
    ("cov_logp_adv", "Cov(log π, A)", (None, None)),
    ("pass_at_1", "pass@1", UNIT),
    ("pass_at_k", "pass@k", UNIT),
    ("rvar_lower", "lower-tail RVaR of bundle scores", (0.0, None)),
    ("mvar", "MVaR of bundle scores", (0.0, None)),
    ("cvar", "CVaR_α of bundle scores", (0.0, None)),
    ("frac_zero_adv_groups", "share of zero-advantage groups", UNIT),
]


def tabular_runs(choices, settings: dict, seeds: int, progress=None) -> tuple[pd.DataFrame, list[str]]:
    """Seed-level metrics of every choice (cached per estimator, the missing ones run together) and errors."""
    from sandbox import TabularConfig, run_tabular

    key = tuple(sorted(settings.items()))
    outputs = cached_runs("tabular", run_tabular, TabularConfig(**settings), choices, seeds, key, progress)
    parts = [frames(result, choice, "metrics") for choice, (result, _) in zip(choices, outputs) if result is not None]
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()), [e for _, errs in outputs for e in errs]


def tabular_settings(knobs: Knobs, group_size: int) -> tuple[dict, int]:
    """The simulator widgets, as TabularConfig keyword arguments, and the number of seeds."""
    c1, c2, c3, c4 = st.columns(4)
    num_prompts = state.slider(
        c1, "prompts P", 5, 120, 40, 5, key="tab_prompts", help="must be a multiple of the bundle size B"
    )
    responses = state.slider(c1, "candidate responses M per prompt", 2, 64, 16, 1, key="tab_responses")
    difficulty = state.selectbox(c2, "difficulty", ("uniform", "easy", "hard", "bimodal"), key="tab_difficulty")
    reward_type = state.selectbox(c2, "reward", ("binary", "graded"), key="tab_reward")
    rho = state.slider(c3, "correctness correlation ρ of the initial policy", -1.0, 1.0, 0.3, 0.1, key="tab_rho")
    lr = state.select_slider(c3, "learning rate η", (0.05, 0.1, 0.2, 0.5, 1.0, 2.0), 0.5, key="tab_lr")
    steps = state.slider(c4, "steps", 10, 400, 150, 10, key="tab_steps")
    seeds = state.slider(c4, "seeds", 1, 8, 3, 1, key="tab_seeds")
    with st.expander("more simulator settings"):
        e1, e2, e3 = st.columns(3)
        peak = state.slider(e1, "initial logit sharpness (peak)", 0.0, 8.0, 3.0, 0.5, key="tab_peak")
        clipped = state.checkbox(e2, "PPO-style clipped updates", False, key="tab_clip")
        clip_eps = state.slider(e2, "clip ε", 0.05, 0.5, 0.2, 0.05, key="tab_clip_eps", disabled=not clipped)
        ppo_epochs = state.slider(
            e3, "gradient steps per batch (clipped)", 1, 8, 2, 1, key="tab_ppo_epochs", disabled=not clipped
        )
    settings = dict(
        num_prompts=int(num_prompts),
        responses_per_prompt=int(responses),
        group_size=int(group_size),
        steps=int(steps),
        lr=float(lr),
        correctness_correlation=float(rho),
        difficulty=difficulty,
        reward_type=reward_type,
        k=int(knobs.k),
        passk_grid=K_GRID,  # pass@k vs k from the same runs (k does not change the training)
        risk_alpha=knobs.alpha,
        risk_beta=knobs.beta,
        risk_omega=knobs.omega,
        log_every=max(1, int(steps) // 150),
        peak=float(peak),
        clip_eps=float(clip_eps) if clipped else None,
        ppo_epochs=int(ppo_epochs),
    )
    return settings, int(seeds)


def run_all(choices: list[Choice], settings: dict, seeds: int, label: str):
    """``tabular_runs`` behind a progress bar when anything is to be computed."""
    if all_cached("tabular", choices, seeds, tuple(sorted(settings.items()))):
        return tabular_runs(choices, settings, seeds)
    with progress_bar(f"{label} ({len(choices)} estimators × {seeds} seed(s), {settings['steps']} steps)") as report:
        return tabular_runs(choices, settings, seeds, progress=report)


def shown_fields(metrics: pd.DataFrame, settings: dict) -> list[tuple[str, str, tuple]]:
    """Panels to draw: with binary rewards pass@1 is the mean reward, so one panel says both."""
    binary = settings["reward_type"] == "binary"
    out = []
    for field, title, bounds in TABULAR_FIELDS:
        if field not in metrics or not metrics[field].notna().any() or (binary and field == "pass_at_1"):
            continue
        if binary and field == "mean_reward":
            title = "mean reward = pass@1 (binary rewards)"
        out.append((field, title.replace("pass@k", f"pass@{settings['k']}"), bounds))
    return out


#: Metrics computed at the sidebar's α, β, ω (bundle-score risk measures).
RISK_FIELDS = ("rvar_lower", "mvar", "cvar")


def risk_levels_valid(settings: dict) -> tuple[dict, str | None]:
    """The settings to run with, and why the risk panels are left out (None: they are drawn).

    The bundle-score risk measures need α < β. When the sidebar has α ≥ β, every other panel
    (and every estimator that does not take α, β, GRPO included) is still drawn: the simulator
    runs with its own default levels and the risk columns are removed from what is shown."""
    from sandbox import TabularConfig

    a, b = settings["risk_alpha"], settings["risk_beta"]
    if 0.0 <= a < b <= 1.0:
        return settings, None
    defaults = TabularConfig()
    settings = {**settings, "risk_alpha": defaults.risk_alpha, "risk_beta": defaults.risk_beta}
    return settings, (
        f"Risk panels (lower-tail RVaR, MVaR, CVaR of bundle scores) not drawn: they need α < β, "
        f"the sidebar has α = {a:g}, β = {b:g}."
    )


def tabular_page(choices: list[Choice], settings: dict, seeds: int, risk_metrics: bool = True) -> dict:
    """Table and figure of one tabular comparison (built once per settings, see ``memo``)."""
    metrics, errors = tabular_runs(choices, settings, seeds)
    if not risk_metrics:
        metrics = metrics.drop(columns=[c for c in RISK_FIELDS if c in metrics])
    if metrics.empty:
        return {"errors": errors, "metrics": metrics}
    fields = shown_fields(metrics, settings)
    return {
        "errors": errors,
        "metrics": metrics,
        "summary": final_summary(metrics, [f for f, _, _ in fields]),
        "fig": band_figure(metrics, [(f, t) for f, t, _ in fields], bounds={f: b for f, _, b in fields}),
    }


@register_view("tabular", "3 · Tabular prompts", order=30)
def render(ctx: Context) -> None:
    st.header("Tabular prompts: an LLM stand-in with verifiable rewards")
    st.caption(
        "P prompts, each a softmax over M candidate responses of known correctness (sandbox.run_tabular). Every step "
        "samples "
        "G responses per prompt, computes advantages with each estimator (bundles and quantile tracking included) "
        "and takes a "
        "policy-gradient step. Lines are means over seeds, bands ± one standard deviation (drawn inside each "
        "quantity's "
        "possible range). pass@k uses the sidebar k; the bundle-score risk metrics use the sidebar α, β, ω."
    )
    settings, seeds = tabular_settings(ctx.knobs, ctx.group_size)
    settings, no_risk = risk_levels_valid(settings)
    try:
        from sandbox import TabularConfig

        TabularConfig(**settings)
    except ValueError as err:
        st.error(f"Invalid tabular settings: {user_words(err)}", icon="⚠️")
        return
    choices, errors = build_choices(ctx.names, ctx.knobs, mode="bundled")
    key = ("tabular_page", tuple(choices), tuple(sorted(settings.items())), seeds, no_risk is None)
    if not memo.has(key):  # the progress bar only when something is to be computed
        run_all(choices, settings, seeds, "tabular runs")
    page = memo.get_or_build(key, lambda: tabular_page(choices, settings, seeds, risk_metrics=no_risk is None))
    show_errors(errors + page["errors"])
    if no_risk:
        st.warning(no_risk, icon="⚠️")
    metrics = page["metrics"]
    if metrics.empty:
        st.info("No estimator could run with these settings.")
        return
    st.markdown(f"**At step {int(metrics['step'].max())}** (mean and std over {seeds} seed(s))")
    st.dataframe(page["summary"], hide_index=True, key="table_tabular")
    fig = page["fig"]
    chart(st, fig, "fig_tabular")
    explain(
        "RiskPO Prop. 1 + Thm 2: entropy falls by η·Cov(log π, A) per step, and the MVaR advantage has the smaller "
        "covariance, so RiskPO keeps entropy higher than GRPO; bundling gives signal on all-fail prompts.",
        "tabular softmax policy per prompt, sequence-level rewards; Thm 2 needs Assumption 1 (here more likely for ρ "
        "> 0).",
        "compare the entropy and Cov(log π, A) panels: a lower covariance should go with a slower entropy decline. "
        "The risk panels (RVaR, MVaR, CVaR) measure the hard tail the risk-averse objectives target.",
    )
    downloads("tabular_metrics", metrics, fig)
    passk_section(choices, settings, seeds)


def passk_page(choices: list[Choice], settings: dict, seeds: int):
    """pass@k vs k from the cached runs' pass_at_k_<k> columns (one run logs every k of K_GRID)."""
    metrics, _ = tabular_runs(choices, settings, seeds)
    by_k = {k: metrics.assign(pass_at_k=metrics[f"pass_at_k_{k}"]) for k in K_GRID} if not metrics.empty else {}
    table = passk_vs_k(curves_from_runs(by_k))
    return table, passk_figure(table)


def passk_section(choices: list[Choice], settings: dict, seeds: int) -> None:
    st.subheader("pass@k vs k (k = 1 … 256)")
    if settings["reward_type"] != "binary":
        st.info("pass@k needs binary rewards (reward: binary).")
        return
    if not state.checkbox(
        st,
        "compute pass@k for k = 1 … 256 (logged by the runs above: no more simulation)",
        False,
        key="tab_passk",
    ):
        st.caption(
            "pass@k vs k at the end of training and at matched pass@1; the 'paper presets' view has it precomputed "
            "in the papers' regime."
        )
        return
    key = ("tabular_passk", tuple(choices), tuple(sorted(settings.items())), seeds)
    table, fig = memo.get_or_build(key, lambda: passk_page(choices, settings, seeds))
    chart(st, fig, "fig_tabular_passk")
    explain(
        "RiskPO and RS-GRPO: risk-seeking (RS-GRPO) and risk-averse bundled (RiskPO) updates keep the policy spread "
        "over more correct responses, so pass@k for large k is higher than GRPO's at the same pass@1.",
        "pass@k = mean over prompts of 1 − (1 − p)^k for the exact per-prompt success probability p of the policy.",
        "read the right panel: at matched pass@1 the curves differ only in how success is spread over prompts. "
        "The left panel (end of training) mixes that with how fast each method learned.",
    )
    downloads("tabular_passk_vs_k", table, fig)
