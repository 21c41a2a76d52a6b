"""python -m sandbox list | all | <claim> | bandit | tabular  [--seeds N] [--out DIR]
python -m sandbox report [--summary results/sandbox/summary.json] [--regime-map app_lib/data/regime_map/regime_map.json]
    [--write README.md docs/sandbox.md]"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .bandit import BanditConfig, run_bandit
from .claims import CLAIMS, get_claim, size_overrides
from .plots import bandit_figure, claim_figure, save_figure, tabular_figure
from .report import REGIME_MAP_PATH, SUMMARY_PATH, claim_summary, claims_table, regime_map_section, write_tables
from .tabular import TabularConfig, run_tabular

EXPERIMENTS = {
    "bandit": "RS-GRPO 100-armed bandit sweep over β ∈ {0,2,4,8,16,32,64} (curves + policy)",
    "tabular": "tabular simulator: GRPO, Dr. GRPO, RiskPO, risk-seeking MVaR, RS-GRPO, pass@k reweighting",
}


def _jsonable(value):
    if isinstance(value, pd.DataFrame):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not isinstance(v, pd.DataFrame)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


class _Bar:
    """Feeds a claim's fractional progress callback into one tqdm bar."""

    def __init__(self, desc: str):
        self.bar = tqdm(total=1000, desc=desc, leave=False)

    def __call__(self, fraction: float) -> None:
        self.bar.n = int(1000 * min(max(fraction, 0.0), 1.0))
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def run_claim(name: str, seeds: int | None, out: str, instances: int | None = None) -> dict:
    fn = CLAIMS[name]
    kwargs = size_overrides(name, seeds, instances)
    bar = _Bar(name)
    if get_claim(name).takes_progress:
        kwargs["progress"] = bar
    start = time.perf_counter()
    result = fn(**kwargs)
    bar.close()
    result["seconds"] = round(time.perf_counter() - start, 2)
    if get_claim(name).kind == "instances":  # the counts are filled by claims that separate the two
        result.setdefault("nontrivial", None)
        result.setdefault("trivial", None)
    result.setdefault("verdict", claim_summary(result)["verdict"])
    stem = os.path.join(out, name)
    with open(stem + ".json", "w") as fh:
        json.dump(_jsonable(result), fh, indent=2, ensure_ascii=False)
    pd.DataFrame(result["table"]).to_csv(stem + ".csv", index=False)
    if isinstance(result.get("metrics"), pd.DataFrame):
        result["metrics"].to_csv(stem + "_metrics.csv", index=False)
    save_figure(claim_figure(name, result, get_claim(name).figure), stem)
    return result


def run_experiment(name: str, seeds: int | None, out: str) -> None:
    seeds = seeds or 4
    bar = _Bar(name)
    stem = os.path.join(out, name)
    if name == "bandit":
        res = run_bandit(
            BanditConfig.rs_grpo_paper(),
            [("rs_grpo", {"beta": float(b)}) for b in (0, 2, 4, 8, 16, 32, 64)],
            seeds=seeds,
            progress=bar,
        )
        res.metrics.to_csv(stem + "_metrics.csv", index=False)
        res.policy.to_csv(stem + "_policy.csv", index=False)
        summary = res.final()
        summary.columns = ["_".join(c) for c in summary.columns]
        fig = bandit_figure(res.metrics, "RS-GRPO 100-armed bandit")
    else:
        specs = [
            ("grpo", {}),
            ("dr_grpo", {}),
            ("riskpo", {"bundle_size": 5}),
            ("riskpo_seeking", {"bundle_size": 5}),
            ("rs_grpo", {"beta": 4.0}),
            ("passk_reweight", {"k": 4}),
        ]
        res = run_tabular(TabularConfig(), specs, seeds=seeds, progress=bar)
        res.metrics.to_csv(stem + "_metrics.csv", index=False)
        summary = res.final()
        fig = tabular_figure(res.metrics, "tabular-prompt simulator")
    bar.close()
    summary.to_csv(stem + ".csv")
    with open(stem + ".json", "w") as fh:
        json.dump(
            _jsonable(
                {
                    "config": res.config,
                    "estimators": res.estimators,
                    "final": summary.reset_index().to_dict(orient="records"),
                }
            ),
            fh,
            indent=2,
            ensure_ascii=False,
        )
    save_figure(fig, stem)
    print(summary.to_string())


def verdict(result: dict) -> str:
    """The claim's verdict: a simulation claim's rule (sandbox.verdicts); else holds / fails as printed."""
    return claim_summary(result)["verdict"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("target", help="'list', 'all', a claim name or an experiment name")
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="training seeds of simulation claims and experiments (default: each one's own)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=None,
        help="random instances of the non-simulation claims (default: each claim's own)",
    )
    parser.add_argument("--out", default="results/sandbox", help="output folder (JSON, CSV, HTML)")
    parser.add_argument("--summary", default=SUMMARY_PATH, help="report: the summary.json to render")
    parser.add_argument("--write", nargs="*", default=[], help="report: files whose claims table to rewrite")
    parser.add_argument(
        "--regime-map",
        default=REGIME_MAP_PATH,
        help="report: the regime_map.json whose headline section to render (files with its markers)",
    )
    args = parser.parse_args(argv)
    for flag in ("seeds", "instances"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag}={getattr(args, flag)} must be >= 1")
    if args.target == "list":
        for name in CLAIMS:
            record = get_claim(name)
            flag = " [erratum]" if record.erratum else ""
            print(f"{name:28s} [{record.kind:10s}] {record.title}{flag}")
        for name, text in EXPERIMENTS.items():
            print(f"{name:28s} {text}")
        print(f"{'all':28s} every claim above, plus summary.md/summary.json")
        print(
            f"{'report':28s} the claims table (summary.json) and regime-map section "
            "(--write FILE... rewrites the marked sections)"
        )
        return 0
    if args.target == "report":
        with open(args.summary) as fh:
            summary = json.load(fh)
        with open(args.regime_map) as fh:
            regime_map = json.load(fh)
        if args.write:
            for path in write_tables(summary, args.write, regime_map):
                print(f"rewrote the generated sections of {path}")
        else:
            print(claims_table(summary))
            print(regime_map_section(regime_map))
        return 0
    os.makedirs(args.out, exist_ok=True)
    if args.target in EXPERIMENTS:
        run_experiment(args.target, args.seeds, args.out)
        return 0
    if args.target == "all":
        names = list(CLAIMS)
    elif args.target in CLAIMS:
        names = [args.target]
    else:
        parser.error(f"unknown target {args.target!r}; run 'python -m sandbox list'")
    results = {}
    start = time.perf_counter()
    for name in tqdm(names, desc="claims", disable=len(names) == 1):
        results[name] = run_claim(name, args.seeds, args.out, args.instances)
        tqdm.write(f"{name}: {verdict(results[name])} ({results[name]['seconds']} s) — {results[name]['measured']}")
    if len(names) > 1:
        summary = {"claims": {name: claim_summary(r) for name, r in results.items()}}
        with open(os.path.join(args.out, "summary.json"), "w") as fh:
            json.dump(_jsonable(summary), fh, indent=2, ensure_ascii=False)
            fh.write("\n")
        with open(os.path.join(args.out, "summary.md"), "w") as fh:
            fh.write(claims_table(summary))
        verdicts = [c["verdict"] for c in summary["claims"].values()]
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("holds", "fails", "not resolved"))
        print(f"\nall claims: {time.perf_counter() - start:.1f} s; {counts} (of {len(verdicts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
