"""Timings of the sandbox simulators against the issue-11 goals (min over repeats).

    python benchmarks/bench_sandbox.py                   # every case, 3 repeats, table on stdout
    python benchmarks/bench_sandbox.py --cases bandit100 tabular --repeats 5 --out bench.json
    python benchmarks/bench_sandbox.py --baseline        # also time the pre-vectorisation simulators

Cases (goal on 2 cores):
    all        ``python -m sandbox all`` in a subprocess, CPU = the child's user+sys (≤ 15 s)
    bandit100  RS-GRPO 100-armed bandit, 7 β × 8 seeds × 25 000 updates, one call (≤ 5 s)
    tabular    default TabularConfig, every registered estimator, 3 seeds, one call (≤ 2 s)
    tabular1   the same, one call per estimator (how the app called it)
    bandit3    Lemma 2's 3-armed bandit preset (exact, 300 steps), every estimator with an
               exact form, one call (≤ 1 s)

Wall time is what a user waits; CPU time is less disturbed by other processes on a shared
machine. The minimum over repeats estimates the undisturbed time. Each in-process case runs
once before timing (torch.optim's first step imports torch._dynamo, ~1 s once per process).
``--baseline`` times tests/sandbox_reference.py, the simulators as they were before
vectorisation, on the in-process cases.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a file, Python puts benchmarks/ on sys.path; the repo root first makes ``sandbox``
# resolve to this checkout, tests/ gives the reference simulators for --baseline.
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402

from sandbox import BanditConfig, TabularConfig, run_bandit, run_tabular  # noqa: E402
from sandbox.common import single_thread  # noqa: E402
from theory import get_estimator, list_estimators  # noqa: E402

SILENT = lambda fraction: None  # noqa: E731
BETAS = (0, 2, 4, 8, 16, 32, 64)
GOALS = {"all": 15.0, "bandit100": 5.0, "tabular": 2.0, "tabular1": 2.0, "bandit3": 1.0}


def _exact_estimators() -> list:
    """Estimators with an exact population form at default parameters (pass@k ones need a group size)."""
    probe_r, probe_p = (
        torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64),
        torch.full((1, 3), 1 / 3, dtype=torch.float64),
    )
    names = []
    for name in list_estimators():
        try:
            get_estimator(name).population(probe_r, probe_p)
            names.append((name, {}))
        except (NotImplementedError, ValueError):
            pass
    return names


def in_process_cases(baseline: bool) -> dict:
    if baseline:
        from sandbox_reference import reference_bandit, reference_tabular

        def bandit(config, specs, seeds, progress=None):
            with single_thread():
                return reference_bandit(config, specs, seeds)

        def tabular(config, specs, seeds, progress=None):
            with single_thread():
                return reference_tabular(config, specs, seeds)
    else:
        bandit, tabular = run_bandit, run_tabular
    every = [(name, {}) for name in list_estimators()]
    return {
        "bandit100": lambda: bandit(
            BanditConfig.rs_grpo_paper(), [("rs_grpo", {"beta": float(b)}) for b in BETAS], 8, progress=SILENT
        ),
        "tabular": lambda: tabular(TabularConfig(), every, 3, progress=SILENT),
        "tabular1": lambda: [tabular(TabularConfig(), [spec], 3, progress=SILENT) for spec in every],
        "bandit3": lambda: bandit(BanditConfig.three_arm(), _exact_estimators(), 1, progress=SILENT),
    }


def time_call(fn, repeats: int) -> tuple[float, float]:
    """(min CPU seconds, min wall seconds) over ``repeats`` calls after one warm-up call."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def time_sandbox_all(repeats: int) -> tuple[float, float]:
    """``python -m sandbox all`` from a fresh interpreter (imports and figures included)."""
    cpu, wall = [], []
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "sandbox", "all", "--out", out],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(cpu), min(wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(GOALS), default=list(GOALS))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (the minimum is reported)")
    parser.add_argument("--baseline", action="store_true", help="also time the pre-vectorisation simulators")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats} must be >= 1")
    rows = []
    variants = [("vectorised", in_process_cases(False))] + (
        [("baseline", in_process_cases(True))] if args.baseline else []
    )
    for case in args.cases:
        for variant, cases in variants:
            if case == "all":
                if variant == "baseline":
                    continue  # the old `sandbox all` is timed from the old commit, see docs/sandbox.md
                cpu, wall = time_sandbox_all(args.repeats)
            else:
                cpu, wall = time_call(cases[case], args.repeats)
            rows.append(
                {
                    "case": case,
                    "variant": variant,
                    "cpu_s": round(cpu, 3),
                    "wall_s": round(wall, 3),
                    "goal_s": GOALS[case],
                }
            )
            print(
                f"{case:10s} {variant:10s} cpu {cpu:7.2f} s  wall {wall:7.2f} s  (goal <= {GOALS[case]:g} s)",
                flush=True,
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores; min over {args.repeats} repeats")
    if args.out:
        meta = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": load,
            "repeats": args.repeats,
        }
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
