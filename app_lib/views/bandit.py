"""View 2: softmax bandit runs (sandbox.run_bandit), one cached run per estimator."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_lib import memo, state
from app_lib.choices import build_choices
from app_lib.figures import policy_animation_figure
from app_lib.runs import final_summary
from app_lib.simulate import cached_runs, frames
from app_lib.ui import chart, downloads, explain, progress_bar, show_errors, user_words
from app_lib.views import Context, register_view
from sandbox.plots import band_figure

#: label -> BanditConfig constructor; short labels (the selectbox is narrow), details in the help text.
BANDIT_PRESETS = {"3-arm (Lemma 2)": "three_arm", "100-arm (RS-GRPO §5.1)": "rs_grpo_paper"}
PRESET_HELP = (
    "3-arm: RS-GRPO Lemma 2's example, r = (1, 0.8, 0), π₀ = (0.05, 0.9, 0.05), exact updates.  \n"
    "100-arm: RS-GRPO §5.1 (Fig. 3) two-mode bandit (optimum 1.0, a 0.6 mode where π₀ is peaked), "
    "batches of 16, η = 0.1; "
    "the paper trains for 25 000 updates."
)
STEP_CHOICES = (10, 20, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10_000, 25_000)
LR_CHOICES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
#: What each preset sets when chosen (the RS-GRPO paper's settings for the 100-arm bandit).
PRESET_DEFAULTS = {
    "three_arm": {
        "bandit_update": "exact",
        "bandit_lr": 0.5,
        "bandit_steps": 300,
        "bandit_batch": 16,
        "bandit_optimizer": "sgd",
        "bandit_noise": "none",
        "bandit_seeds": 3,
    },
    "rs_grpo_paper": {
        "bandit_update": "sampled",
        "bandit_lr": 0.1,
        "bandit_steps": 1000,
        "bandit_batch": 16,
        "bandit_optimizer": "sgd",
        "bandit_noise": "none",
        "bandit_seeds": 3,
    },
}


def apply_preset_defaults() -> None:
    """on_change of the problem: every setting takes the new problem's default (not the old problem's value)."""
    preset = BANDIT_PRESETS[st.session_state["bandit_preset"]]
    for key, value in PRESET_DEFAULTS[preset].items():
        st.session_state[key] = value


def bandit_runs(choices: tuple, preset: str, settings: tuple, seeds: int, progress=None):
    """[(result, errors)] per choice (cached per estimator, run together when missing) and the arm rewards."""
    from sandbox import BanditConfig, run_bandit

    config = getattr(BanditConfig, preset)(**dict(settings))
    return cached_runs("bandit", run_bandit, config, choices, seeds, (preset, settings), progress), list(config.rewards)


def bandit_page(choices: tuple, preset: str, settings: tuple, seeds: int) -> dict:
    """Tables and figures of one bandit comparison (built once per settings, see ``memo``)."""
    outputs, arm_rewards = bandit_runs(choices, preset, settings, seeds)
    errors = [e for _, errs in outputs for e in errs]
    ran = [(choice, result) for choice, (result, _) in zip(choices, outputs) if result is not None]
    if not ran:
        return {"errors": errors, "metrics": pd.DataFrame()}
    metrics = pd.concat([frames(result, choice, "metrics") for choice, result in ran], ignore_index=True)
    policy = pd.concat([frames(result, choice, "policy") for choice, result in ran], ignore_index=True)
    fields = [
        ("expected_reward", "expected reward E_π[r]"),
        ("entropy", "policy entropy H(π)"),
        ("prob_best", "π(best arm)"),
    ]
    bounds = {"expected_reward": (min(arm_rewards), max(arm_rewards)), "entropy": (0.0, None), "prob_best": (0.0, 1.0)}
    return {
        "errors": errors,
        "metrics": metrics,
        "policy": policy,
        "summary": final_summary(metrics, [f for f, _ in fields]),
        "fig": band_figure(metrics, fields, bounds=bounds),
        "policy_fig": policy_animation_figure(policy, arm_rewards),
    }


@register_view(
    "bandit",
    "2 · Bandit runs",
    order=20,
    sidebar=("estimators", "alpha", "beta", "omega", "k", "rs_beta", "rs_betas_extra"),  # one prompt: no B, no G
)
def render(ctx: Context) -> None:
    st.header("Bandit runs: softmax policy over arms")
    st.caption(
        "Each estimator trains a softmax policy on a multi-armed bandit (sandbox.run_bandit). "
        "Exact updates use the estimator's population advantage; sampled updates draw a batch of arms. "
        "Bands are ± one standard deviation over seeds (zero for exact updates, which have no randomness)."
    )
    top1, top2 = st.columns([2, 3])
    preset_label = state.selectbox(
        top1, "problem", list(BANDIT_PRESETS), key="bandit_preset", help=PRESET_HELP, on_change=apply_preset_defaults
    )
    preset = BANDIT_PRESETS[preset_label]
    defaults = PRESET_DEFAULTS[preset]
    noise = state.selectbox(
        top2,
        "reward noise",
        ("none", "bernoulli"),
        defaults["bandit_noise"],
        key="bandit_noise",
        help="bernoulli: r ~ Bern(μ(arm)), binary rewards as in RLVR",
    )
    c2, c3, c4 = st.columns(3)
    update = state.radio(
        c2, "update", ("exact", "sampled"), defaults["bandit_update"], horizontal=True, key="bandit_update"
    )
    batch_size = state.slider(
        c2,
        "arms per batch (sampled)",
        2,
        64,
        defaults["bandit_batch"],
        1,
        key="bandit_batch",
        disabled=update == "exact",
    )
    optimizer = state.selectbox(
        c3, "optimizer", ("sgd", "adam", "natural"), defaults["bandit_optimizer"], key="bandit_optimizer"
    )
    lr = state.select_slider(c3, "learning rate η", LR_CHOICES, defaults["bandit_lr"], key="bandit_lr")
    steps = state.select_slider(
        c4,
        "steps",
        STEP_CHOICES,
        defaults["bandit_steps"],
        key="bandit_steps",
        help="the RS-GRPO 100-arm figure needs 25 000 updates (the 'paper presets' view has it precomputed)",
    )
    seeds = state.slider(
        c4,
        "seeds",
        1,
        8,
        defaults["bandit_seeds"],
        1,
        key="bandit_seeds",
        disabled=update == "exact",
        help="exact updates are deterministic: one run",
    )
    seeds = 1 if update == "exact" else seeds
    settings = dict(
        lr=float(lr),
        steps=int(steps),
        optimizer=optimizer,
        batch_size=None if update == "exact" else int(batch_size),
        reward_noise=noise,
        log_every=max(1, int(steps) // 200),
    )
    try:
        from sandbox import BanditConfig

        getattr(BanditConfig, preset)(**settings)
    except ValueError as err:
        st.error(f"Invalid bandit settings: {user_words(err)}", icon="⚠️")
        return
    choices, errors = build_choices(ctx.names, ctx.knobs, mode="single_prompt")
    key = (tuple(choices), preset, tuple(sorted(settings.items())), int(seeds))
    if not memo.has(("bandit_page",) + key):  # the progress bar only when something is to be computed
        with progress_bar(f"bandit runs ({len(choices)} estimators × {seeds} seed(s), {steps} steps)") as report:
            bandit_runs(*key, progress=report)
    page = memo.get_or_build(("bandit_page",) + key, lambda: bandit_page(*key))
    errors = errors + page["errors"]
    # Estimators without an exact (population) form are not a mistake of the user: say so quietly.
    no_exact = [e for e in errors if "no exact" in e]
    if no_exact:
        skipped = ", ".join(dict.fromkeys(e.split(": ", 1)[0] for e in no_exact))
        st.info(
            f"Not drawn with exact updates: {skipped} (no exact population form; choose 'sampled' to include them).",
            icon="ℹ️",
        )
    show_errors([e for e in errors if e not in no_exact])
    if page["metrics"].empty:
        st.info("No estimator could run with these settings.")
        return
    metrics, policy, fig = page["metrics"], page["policy"], page["fig"]
    st.markdown(f"**At step {int(metrics['step'].max())}** (mean over {seeds} seed(s))")
    st.dataframe(page["summary"], hide_index=True, key="table_bandit")
    chart(st, fig, "fig_bandit_metrics")
    explain(
        "RS-GRPO Lemmas 2–3 and §5.1: the mean objective (β → 0) can lower π(best arm) when a runner-up arm beats the "
        "average, and stays in the mode the initial policy favours; a large enough β always raises π(best arm).",
        "softmax policy over the arms, rewards bounded; exact updates follow the population gradient, sampled ones "
        "a batch estimate of it.",
        "on the 3-arm problem, compare π(best arm) in the first steps: mean-based estimators dip, RS-GRPO with "
        "β ≳ 2 does not. On the 100-arm problem, β ≥ 4 leaves the 0.6 mode for the 1.0 arm (give it ≥ 5 000 steps).",
    )
    downloads("bandit_metrics", metrics, fig)
    st.subheader("Policy over time")
    policy_fig = page["policy_fig"]
    chart(st, policy_fig, "fig_bandit_policy")
    downloads("bandit_policy", policy, policy_fig)
