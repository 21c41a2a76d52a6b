"""Precompute the explorer's paper presets with the sandbox and write them as small CSV + JSON files.

    ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 python -m app_lib.presets_build    # all presets into app_lib/data/presets/
    ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 python -m app_lib.presets_build --only rs_bandit --seeds 4

The files are committed, so the explorer shows a 25 000-update bandit sweep in one click
without running it. Every file is a seed mean/std table plus ``<name>.json`` holding the
exact settings and the command that regenerates it.

The sandbox's runs depend on torch's kernel dispatch: its AVX-512 and AVX2 kernels sum in different
orders, and a last-bit difference can flip one seed's trajectory (a RiskPO run on the tabular
sandbox diverged at step 164 between an AVX-512 and an AVX2-only machine). Presets are therefore
built with torch's AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``, which every x86-64 machine this
project runs on supports) and MKL's AVX2 code path (``MKL_CBWR=AVX2``); the build refuses to run
otherwise, and the test that rebuilds a preset uses the same two settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data" / "presets"

RS_BETAS = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
PASSK_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BUNDLE_SIZES = (1, 2, 3, 4, 5, 6, 8, 10)


def seed_stats(metrics: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and std (ddof=1; 0 for one seed) over seeds of ``columns`` per ``keys`` group."""
    grouped = metrics.groupby(keys, sort=False)[columns]
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    return mean.add_suffix("_mean").join(std.add_suffix("_std")).reset_index()


def build_rs_bandit(seeds: int) -> tuple[dict[str, pd.DataFrame], dict]:
    from sandbox import BanditConfig, run_bandit

    config = BanditConfig.rs_grpo_paper(log_every=250, policy_snapshots=100)
    specs = [("rs_grpo", {"beta": b}) for b in RS_BETAS]
    result = run_bandit(config, specs, seeds=seeds)
    labels = dict(zip(dict.fromkeys(result.metrics["estimator"]), RS_BETAS))
    metrics = result.metrics.assign(beta=result.metrics["estimator"].map(labels))
    curves = seed_stats(metrics, ["beta", "step"], ["expected_reward", "entropy", "prob_best"])
    curves["seeds"] = seeds
    policy = result.policy.assign(beta=result.policy["estimator"].map(labels)).drop(columns="estimator")
    keep = sorted(policy["step"].unique())
    snapshots = [s for s in keep if s in (0, 250, 1000, 2500, 5000, 10_000) or s == keep[-1]]
    policy = policy[policy["step"].isin(snapshots)][["beta", "step", "arm", "prob"]]
    settings = {
        "config": {k: v for k, v in result.config.items() if k not in ("rewards", "init_logits")},
        "rewards": "sandbox.bandit.rs_grpo_paper_rewards()",
        "init_logits": "sandbox.bandit.rs_grpo_paper_init_logits()",
        "estimators": [list(s) for s in specs],
        "seeds": seeds,
    }
    return {"rs_bandit": curves, "rs_bandit_policy": policy}, settings


def build_tabular(
    name: str, specs: list, seeds: int, columns: list[str], **config
) -> tuple[dict[str, pd.DataFrame], dict]:
    from sandbox import TabularConfig, run_tabular

    cfg = TabularConfig(**config)
    result = run_tabular(cfg, specs, seeds=seeds)
    curves = seed_stats(result.metrics, ["estimator", "step"], columns)
    curves["seeds"] = seeds
    return {name: curves}, {"config": result.config, "estimators": [list(s) for s in specs], "seeds": seeds}


def build_riskpo_entropy(seeds: int):
    specs = [
        ("grpo", {}),
        ("dr_grpo", {}),
        ("riskpo", {"bundle_size": 5}),
        ("riskpo_seeking", {"bundle_size": 5}),
        ("rs_grpo", {"beta": 4.0}),
    ]
    return build_tabular(
        "riskpo_entropy",
        specs,
        seeds,
        ["entropy", "mean_reward", "rvar_lower", "mvar", "cvar", "pass_at_k"],
        steps=300,
        log_every=2,
        k=8,
    )


def build_bundle_sweep(seeds: int):
    """Per B: the run-mean share of zero-advantage groups and the final metrics, mean and std over seeds
    (a run mean per seed first: the share at a single step is too noisy to compare B)."""
    from sandbox import TabularConfig, run_tabular

    specs = [("riskpo", {"bundle_size": b}) for b in BUNDLE_SIZES]
    config = TabularConfig(steps=150, num_prompts=120, log_every=1, k=8)
    metrics = run_tabular(config, specs, seeds=seeds).metrics
    run_mean = (
        metrics.groupby(["estimator", "seed"], sort=False)["frac_zero_adv_groups"]
        .mean()
        .rename("run_mean_frac_zero_adv_groups")
    )
    last = metrics[metrics["step"] == config.steps].set_index(["estimator", "seed"])[
        ["entropy", "mean_reward", "pass_at_k", "mvar"]
    ]
    per_seed = last.add_prefix("final_").join(run_mean).reset_index()
    summary = seed_stats(per_seed, ["estimator"], [c for c in per_seed.columns if c not in ("estimator", "seed")])
    summary.insert(1, "bundle_size", list(BUNDLE_SIZES))
    summary["seeds"] = seeds
    settings = {
        "config": {k: v for k, v in vars(config).items()},
        "estimators": [list(s) for s in specs],
        "seeds": seeds,
    }
    return {"bundle_sweep": summary}, settings


def build_passk(seeds: int):
    """pass@k for k = 1…256 along training: one run per k (the trajectories are identical across k,
    since k only changes what is logged; the simulator logs a single k)."""
    from sandbox import TabularConfig, run_tabular

    specs = [("grpo", {}), ("riskpo", {"bundle_size": 5}), ("rs_grpo", {"beta": 4.0})]
    base = dict(steps=150, log_every=2, peak=5.0, correctness_correlation=0.0, difficulty="hard")
    frames = []
    for k in PASSK_KS:
        result = run_tabular(TabularConfig(k=k, **base), specs, seeds=seeds)
        stats = seed_stats(result.metrics, ["estimator", "step"], ["pass_at_1", "pass_at_k"])
        frames.append(stats.assign(k=k))
    curves = pd.concat(frames, ignore_index=True)
    curves["seeds"] = seeds
    return {"passk": curves}, {
        "config": {**base, "k": list(PASSK_KS)},
        "estimators": [list(s) for s in specs],
        "seeds": seeds,
        "note": "regime of sandbox claim passk_large_k (peaked, uninformative initial policy, hard prompts)",
    }


BUILDERS = {
    "rs_bandit": (build_rs_bandit, 8),
    "riskpo_entropy": (build_riskpo_entropy, 6),
    "bundle_sweep": (build_bundle_sweep, 4),
    "passk": (build_passk, 6),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(BUILDERS), nargs="*", help="presets to rebuild (default: all)")
    parser.add_argument("--seeds", type=int, default=None, help="override each preset's number of seeds")
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args(argv)
    import torch

    from sandbox.common import REPRODUCIBLE_PREFIX, reproducible_env_unmet

    unmet = reproducible_env_unmet()
    if unmet:
        raise SystemExit(
            "presets are built with torch's AVX2 kernels and MKL's AVX2 path so that machines with other "
            f"kernels (AVX-512) rebuild them with the same ones (here: {unmet}): run "
            f"{REPRODUCIBLE_PREFIX} python -m app_lib.presets_build ..."
        )
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(BUILDERS):
        builder, default_seeds = BUILDERS[name]
        seeds = args.seeds or default_seeds
        start = time.time()
        frames, settings = builder(seeds)
        for stem, frame in frames.items():
            frame.to_csv(args.out / f"{stem}.csv", index=False, float_format="%.6g")
        settings.update(
            command=f"{REPRODUCIBLE_PREFIX} python -m app_lib.presets_build --only {name} --seeds {seeds}",
            seconds=round(time.time() - start, 1),
            python=platform.python_version(),
            numpy=np.__version__,
            torch=torch.__version__,
            cpu_capability=torch.backends.cpu.get_cpu_capability(),
        )
        (args.out / f"{name}.json").write_text(json.dumps(settings, indent=1, default=str) + "\n")
        print(f"{name}: {', '.join(frames)} in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
