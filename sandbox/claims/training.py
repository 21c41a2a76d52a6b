"""The papers' training-dynamics claims, run in the tabular simulator (``sandbox.tabular``).

These are empirical statements of the papers (entropy curves, ablations, pass@k plots), not theorems:
the simulator reproduces the mechanism, not the LLM-scale numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..common import single_thread
from ..tabular import TabularConfig, run_tabular
from .registry import register_claim, result

__all__ = [
    "claim_entropy_riskpo_vs_grpo",
    "claim_risk_seeking_collapse",
    "claim_bundling_nonzero_gradient",
    "claim_passk_large_k",
    "claim_bundle_size_sweep",
]


RISKPO = ("riskpo", {"bundle_size": 5})
RISKPO_SEEKING = ("riskpo_seeking", {"bundle_size": 5})
GRPO = ("grpo", {})
RS_GRPO = ("rs_grpo", {"beta": 4.0})


def _tabular_table(res, columns) -> list[dict]:
    final = res.final(columns)
    return [{"estimator": name, **{c: float(final.loc[name, c]) for c in columns}} for name in final.index]


@register_claim(
    "entropy_riskpo_vs_grpo",
    kind="simulation",
    paper="RiskPO v2 (2510.00911), §5 and §6 entropy curves",
    title="RiskPO keeps policy entropy higher than GRPO",
    statement="RiskPO, which uses MVaR as its objective, can alleviate entropy collapse; Prop. 1 with Thm. 2 imply it leads to higher output entropy than mean-based methods (§5); training curves show higher entropy (§6).",
    assumptions="Tabular simulator (sandbox.tabular): softmax policies over a finite response set per prompt, binary correctness, exact-count sampling of G responses, the estimators of theory.estimators. GRPO vs RiskPO with bundles of 5, 6 seeds, 150 steps.",
    conclusion="Holds in the simulator when final entropy of RiskPO exceeds GRPO on average and in ≥ 75% of seeds.",
)
@single_thread()
def claim_entropy_riskpo_vs_grpo(seeds: int = 6, steps: int = 150, progress=None, **config) -> dict:
    """RiskPO (bundled MVaR) keeps policy entropy higher than GRPO."""
    cfg = TabularConfig(steps=steps, **config)
    res = run_tabular(cfg, [GRPO, RISKPO], seeds=seeds, progress=progress)
    last = res.metrics[res.metrics.step == cfg.steps].pivot(index="seed", columns="estimator", values="entropy")
    diff = last["riskpo(bundle_size=5)"] - last["grpo"]
    holds = float(diff.mean()) > 0 and float((diff > 0).mean()) >= 0.75
    return result(
        holds,
        f"final entropy RiskPO − GRPO = {float(diff.mean()):+.3f} (higher in {int((diff > 0).sum())}/{seeds} seeds)",
        _tabular_table(res, ["entropy", "mean_reward", "pass_at_k", "cov_logp_adv"]),
        metrics=res.metrics,
    )


@register_claim(
    "risk_seeking_collapse",
    kind="simulation",
    paper="RiskPO v2 (2510.00911), §5 after Thm. 2 (risk-seeking objectives)",
    title="Risk-seeking MVaR collapses entropy fastest (vs risk-averse MVaR and Dr. GRPO)",
    statement="Risk-seeking objectives assign greater weight to high-reward outcomes, thereby amplifying the covariance between log-probabilities and advantages; this causes entropy to decrease more rapidly and results in severe entropy collapse.",
    assumptions="Tabular simulator (sandbox.tabular): softmax policies over a finite response set per prompt, binary correctness, exact-count sampling of G responses, the estimators of theory.estimators. Run-averaged entropy of the risk-seeking MVaR vs risk-averse MVaR and Dr. GRPO (same scale family); GRPO reported only.",
    conclusion="Holds in the simulator when the risk-seeking variant has the lowest run-averaged entropy in ≥ 75% of seeds.",
)
@single_thread()
def claim_risk_seeking_collapse(seeds: int = 6, steps: int = 150, progress=None, **config) -> dict:
    """The risk-seeking MVaR variant drains entropy fastest (lowest run-averaged entropy).

    Compared with the unnormalised advantages of the same scale family (risk-averse MVaR with the
    same bundles and quantile levels, and mean-based Dr. GRPO); GRPO is reported too, but its
    division by the group std is an adaptive step size, so its speed is not comparable at equal η.
    """
    cfg = TabularConfig(steps=steps, **config)
    specs = [GRPO, ("dr_grpo", {}), RISKPO, RISKPO_SEEKING]
    res = run_tabular(cfg, specs, seeds=seeds, progress=progress)
    area = res.metrics.groupby(["estimator", "seed"]).entropy.mean().unstack(0)  # mean entropy over the run
    seeking = area["riskpo_seeking(bundle_size=5)"]
    others = area[["dr_grpo", "riskpo(bundle_size=5)"]]
    lowest = (seeking.values[:, None] < others.values).all(1)
    holds = float(lowest.mean()) >= 0.75
    final = res.final(["entropy", "mean_reward"])
    table = [
        {
            "estimator": c,
            "mean_entropy_over_run": float(area[c].mean()),
            "final_entropy": float(final.loc[c, "entropy"]),
            "final_mean_reward": float(final.loc[c, "mean_reward"]),
        }
        for c in area.columns
    ]
    return result(
        holds,
        f"risk-seeking has the lowest run-averaged entropy in {int(lowest.sum())}/{seeds} seeds ("
        + ", ".join(f"{r['estimator']}: {r['mean_entropy_over_run']:.3f}" for r in table)
        + ")",
        table,
        metrics=res.metrics,
    )


@register_claim(
    "bundling_nonzero_gradient",
    kind="simulation",
    paper="RiskPO v2 (2510.00911), §4.1 bundling",
    title="Bundling (B>1) gives a non-zero gradient on all-fail prompts; GRPO gives zero",
    statement="Grouping questions into bundles transforms sparse binary feedback into a more informative distribution over bundle scores, enabling finer distinctions between levels of performance and avoiding zero gradient on difficult questions.",
    assumptions="Tabular simulator (sandbox.tabular): softmax policies over a finite response set per prompt, binary correctness, exact-count sampling of G responses, the estimators of theory.estimators. Hard prompts; counts all-fail prompts whose advantages vary within the group (a constant per-group advantage is only a baseline).",
    conclusion="Holds when RiskPO with B = 5 and B = 10 gives within-group varying advantages on most all-fail prompts, at least as often for B = 10 as for B = 5. (Group-based estimators giving exactly 0 there, and B = 1 giving a constant, are true by construction and reported as sanity checks only.)",
)
@single_thread()
def claim_bundling_nonzero_gradient(seeds: int = 4, steps: int = 20, progress=None, **config) -> dict:
    """On prompts whose G responses all fail, bundling (B>1) gives advantages that differ between the
    responses (a gradient with non-zero mean); GRPO gives exactly zero.

    A per-group *constant* advantage (RiskPO with B = 1 and batch-level quantiles) is only a
    baseline: Σ_i c ∇log π(y_i) has expectation zero. So the check counts all-fail prompts
    whose advantages vary within the group.
    """
    config.setdefault("difficulty", "hard")
    config.setdefault("correctness_correlation", 0.0)
    cfg = TabularConfig(steps=steps, **config)
    specs = [GRPO, ("dr_grpo", {}), RS_GRPO, ("riskpo", {"bundle_size": 1}), RISKPO, ("riskpo", {"bundle_size": 10})]
    res = run_tabular(cfg, specs, seeds=seeds, progress=progress)
    grouped = res.metrics.groupby("estimator", sort=False)
    varied, nonzero, zero_groups = (
        grouped.allfail_varied_adv.mean(),
        grouped.allfail_nonzero_adv.mean(),
        grouped.frac_zero_adv_groups.mean(),
    )
    table = [
        {
            "estimator": n,
            "frac_allfail_prompts_with_varied_adv": float(varied[n]),
            "frac_allfail_prompts_with_nonzero_adv": float(nonzero[n]),
            "frac_zero_adv_groups": float(zero_groups[n]),
        }
        for n in varied.index
    ]
    # Sanity only (true by construction, so not part of ``holds``): group-relative advantages of an
    # all-zero group are exactly 0, and B = 1 with batch-wide quantiles gives a per-group constant.
    group_based_zero = all(float(nonzero[n]) == 0.0 for n in ("grpo", "dr_grpo", "rs_grpo(beta=4)"))
    unbundled_flat = float(varied["riskpo(bundle_size=1)"]) == 0.0
    # The falsifiable part: bundles give varying advantages on most all-fail prompts, more so for larger B.
    share5, share10 = float(varied["riskpo(bundle_size=5)"]), float(varied["riskpo(bundle_size=10)"])
    bundled = share5 > 0.5 and share10 > 0.5
    grows_with_bundle = share10 >= share5
    holds = bundled and grows_with_bundle
    return result(
        holds,
        f"share of all-fail prompts whose advantages vary within the group: GRPO {float(varied['grpo']):.2f}, "
        f"RiskPO B=1 {float(varied['riskpo(bundle_size=1)']):.2f}, B=5 {float(varied['riskpo(bundle_size=5)']):.2f}, "
        f"B=10 {float(varied['riskpo(bundle_size=10)']):.2f} (GRPO advantage there is exactly 0)",
        table,
        metrics=res.metrics,
        sanity_group_based_zero=group_based_zero,
        sanity_unbundled_constant=unbundled_flat,
        grows_with_bundle=grows_with_bundle,
    )


def _value_at_matched(curve_x: np.ndarray, curve_y: np.ndarray, target: float) -> float:
    """y at the first point where x reaches ``target`` (linear interpolation between logged steps)."""
    above = np.nonzero(curve_x >= target)[0]
    if not len(above):
        return float("nan")
    j = int(above[0])
    if j == 0:
        return float(curve_y[0])
    x0, x1, y0, y1 = curve_x[j - 1], curve_x[j], curve_y[j - 1], curve_y[j]
    return float(y0 + (target - x0) / (x1 - x0) * (y1 - y0)) if x1 > x0 else float(y1)


@register_claim(
    "passk_large_k",
    kind="simulation",
    paper="RiskPO v2 (2510.00911) App. B.3 and RS-GRPO (2509.24261) §6.2 pass@k results",
    title="pass@k improves more under RiskPO/RS-GRPO than GRPO (at matched pass@1)",
    statement="RiskPO consistently outperforms GRPO on pass@k, with a gap widening for k = 8, 16 (RiskPO App. B.3); RS-GRPO consistently and significantly outperforms GRPO on pass@k (RS-GRPO §6.2).",
    assumptions="Tabular simulator (sandbox.tabular): softmax policies over a finite response set per prompt, binary correctness, exact-count sampling of G responses, the estimators of theory.estimators. Sharply peaked initial policy, hard prompts, k = 32; compared along each training curve at the highest pass@1 that every method reaches.",
    conclusion="Holds in the simulator when both RiskPO and RS-GRPO (β = 4) have higher pass@32 than GRPO at matched pass@1.",
)
@single_thread()
def claim_passk_large_k(seeds: int = 6, steps: int = 150, k: int = 32, progress=None, **config) -> dict:
    """At the same pass@1, pass@k (large k) is higher under RiskPO / RS-GRPO than under GRPO.

    Methods learn at different speeds at equal η (GRPO's std division is an adaptive step),
    so the comparison is made along each training curve at the highest pass@1 that every
    method reaches; the raw gain after ``steps`` is reported as well.
    """
    # The papers' regime: sharply peaked initial policy, uninformative about correctness, hard prompts.
    config.setdefault("peak", 5.0)
    config.setdefault("correctness_correlation", 0.0)
    config.setdefault("difficulty", "hard")
    cfg = TabularConfig(steps=steps, k=k, **config)
    specs = [GRPO, RISKPO, RS_GRPO]
    res = run_tabular(cfg, specs, seeds=seeds, progress=progress)
    m = res.metrics
    curves = m.groupby(["estimator", "step"], sort=False)[["pass_at_1", "pass_at_k"]].mean()
    names = list(dict.fromkeys(m.estimator))
    target = min(float(curves.loc[n].pass_at_1.max()) for n in names)
    start = m[m.step == 0].groupby("estimator").pass_at_k.mean()
    end = m[m.step == cfg.steps].groupby("estimator")[["pass_at_1", "pass_at_k"]].mean()
    matched = {
        n: _value_at_matched(curves.loc[n].pass_at_1.to_numpy(), curves.loc[n].pass_at_k.to_numpy(), target)
        for n in names
    }
    table = [
        {
            "estimator": n,
            "pass@1_matched": target,
            f"pass@{k}_at_matched_pass@1": matched[n],
            f"pass@{k}_start": float(start[n]),
            f"pass@{k}_end": float(end.loc[n, "pass_at_k"]),
            "pass@1_end": float(end.loc[n, "pass_at_1"]),
        }
        for n in names
    ]
    holds_riskpo = matched["riskpo(bundle_size=5)"] > matched["grpo"]
    holds_rs_grpo = matched["rs_grpo(beta=4)"] > matched["grpo"]
    holds = holds_riskpo and holds_rs_grpo
    return result(
        holds,
        f"pass@{k} at pass@1 = {target:.3f}: GRPO {matched['grpo']:.3f}, RiskPO {matched['riskpo(bundle_size=5)']:.3f}, "
        f"RS-GRPO(β=4) {matched['rs_grpo(beta=4)']:.3f}; after {cfg.steps} steps: "
        + ", ".join(
            f"{n} {float(end.loc[n, 'pass_at_k']):.3f} (pass@1 {float(end.loc[n, 'pass_at_1']):.3f})" for n in names
        ),
        table,
        metrics=m,
        holds_riskpo=holds_riskpo,
        holds_rs_grpo=holds_rs_grpo,
        matched_pass_at_1=target,
        matched_pass_at_k=matched,
    )


@register_claim(
    "bundle_size_sweep",
    kind="simulation",
    paper="RiskPO v2 (2510.00911), bundle-size discussion (§4.1)",
    title="Bundle-size sweep B∈{1..10}: zero-advantage share falls with B",
    statement="Bundling avoids zero gradients on difficult questions; larger bundles give a denser distribution of bundle scores.",
    assumptions="Tabular simulator (sandbox.tabular): softmax policies over a finite response set per prompt, binary correctness, exact-count sampling of G responses, the estimators of theory.estimators. RiskPO with B ∈ {1, 2, 3, 4, 5, 6, 8, 10}, 120 prompts.",
    conclusion="Holds when the run-mean share of zero-advantage bundles is smaller at B = 10 than at B = 1.",
)
@single_thread()
def claim_bundle_size_sweep(
    seeds: int = 4,
    steps: int = 150,
    bundle_sizes: Sequence[int] = (1, 2, 3, 4, 5, 6, 8, 10),
    num_prompts: int = 120,
    progress=None,
    **config,
) -> dict:
    """RiskPO with B = 1..10: larger bundles leave fewer zero-advantage bundles (denser signal)."""
    cfg = TabularConfig(steps=steps, num_prompts=num_prompts, **config)
    specs = [("riskpo", {"bundle_size": int(b)}) for b in bundle_sizes]
    res = run_tabular(cfg, specs, seeds=seeds, progress=progress)
    cols = ["frac_zero_adv_groups", "entropy", "mean_reward", "pass_at_k", "mvar"]
    run_avg = res.metrics.groupby("estimator", sort=False)[cols].mean()
    final = res.final(cols)
    table = [
        {
            "bundle_size": int(b),
            "run_mean_frac_zero_adv_groups": float(run_avg.loc[f"riskpo(bundle_size={b})", "frac_zero_adv_groups"]),
            **{f"final_{c}": float(final.loc[f"riskpo(bundle_size={b})", c]) for c in cols},
        }
        for b in bundle_sizes
    ]
    zeros = [r["run_mean_frac_zero_adv_groups"] for r in table]
    holds = zeros[-1] < zeros[0]
    return result(
        holds,
        "run-mean share of zero-advantage groups: "
        + ", ".join(f"B={r['bundle_size']}: {r['run_mean_frac_zero_adv_groups']:.3f}" for r in table),
        table,
        metrics=res.metrics,
    )
