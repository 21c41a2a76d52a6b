"""Where each dynamic claim holds: a one-axis-at-a-time sweep of the tabular simulator around two centres.

    python -m sandbox.regime_map --out app_lib/data/regime_map          # the committed default map
    python -m sandbox.regime_map --out /tmp/map --seeds 8 --axes lr,group_size

The papers show one operating point; the map shows the region. Two centres, one per claim's regime:

* ``entropy``: ``TabularConfig()`` (uniform difficulty, peak 3, ρ = 0.3), the regime of the entropy claim;
* ``passk``:   peak 5, ρ = 0, hard prompts, the regime of the pass@k claim (``passk_large_k``).

Around each, one axis moves at a time (``AXES``): prompt difficulty (reported with its measured base
accuracy, the step-0 pass@1), group size G, bundle size B, α, β, ω, learning rate and training length
(read off one long run: a run's first T steps do not depend on how long it continues). Every point
trains GRPO, Dr. GRPO, RiskPO (bundled MVaR), RiskPO with B = 1, RS-GRPO (β = 4) and the non-paper
ablation ``riskpo_centred`` from the same seeds (common random numbers) for the same number of steps,
and records, per comparison, the paired difference at that step across seeds with its 95 % t interval
and verdict (``sandbox.verdicts``; the rule is the claims' one):

* entropy (RiskPO §5/§6): final entropy RiskPO − GRPO and RiskPO − Dr. GRPO, claimed > 0;
* pass@k (RiskPO App. B.3, RS-GRPO §6.2): pass@32 RiskPO − GRPO, RiskPO − Dr. GRPO, RS-GRPO − GRPO, > 0;
* bundle size (RiskPO Table 4: B = 5 best, B = 1 worst): pass@1 RiskPO(B) − RiskPO(B = 1), > 0;
* centring (non-paper ablation): RiskPO centred − RiskPO on entropy, pass@1, pass@32; no direction is
  claimed, the verdict reads "centred is higher". ``centring_variance`` measures the gradient variance
  that the constant offset of the camera-ready advantage (A <= 0 everywhere) adds.

The map is precomputed (``--out``) and shown by the explorer; ``python -m sandbox all`` does not run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from theory import get_estimator
from theory.updates import sampled_policy_gradient

from .common import single_thread
from .tabular import TabularConfig, make_problem, run_tabular
from .verdicts import FAILS, HOLDS, PRIMARY, claim_verdict, compare

__all__ = [
    "CENTRES",
    "AXES",
    "CLAIM_COMPARISONS",
    "RISKPO_DEFAULT",
    "MapPoint",
    "point_specs",
    "run_point",
    "centring_variance",
    "run_map",
    "headline",
    "main",
]

K = 32
STEPS = 150
SEEDS = 8
RS_BETA = 4.0
#: RiskPO's parameters at both centres (the paper's α, β, ω; B = 5 as in Table 4's best).
RISKPO_DEFAULT = {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5}
#: centre -> TabularConfig overrides (k and steps are set by the map).
CENTRES = {
    "entropy": {},
    "passk": {"peak": 5.0, "correctness_correlation": 0.0, "difficulty": "hard"},
}
#: axis -> (where it acts: "config" | "riskpo" | "steps", values). Each list holds its centre value.
AXES: dict[str, tuple[str, tuple]] = {
    "difficulty": ("config", ("easy", "uniform", "bimodal", "hard")),
    "group_size": ("config", (4, 8, 16)),
    "bundle_size": ("riskpo", (1, 2, 5, 10)),
    "alpha": ("riskpo", (0.1, 0.2, 0.3)),
    "beta": ("riskpo", (0.7, 0.8, 0.9)),
    "omega": ("riskpo", (0.0, 0.5, 1.0, 2.0)),
    "lr": ("config", (0.1, 0.25, 0.5, 1.0)),
    "steps": ("steps", (25, 50, 100, 150, 300)),
}
#: claim -> [(method, baseline, quantity)], the primary comparisons (all claimed "method > baseline").
CLAIM_COMPARISONS: dict[str, list[tuple[str, str, str]]] = {
    "entropy": [("riskpo", "grpo", "entropy"), ("riskpo", "dr_grpo", "entropy")],
    "passk": [("riskpo", "grpo", "pass_at_k"), ("riskpo", "dr_grpo", "pass_at_k"), ("rs_grpo", "grpo", "pass_at_k")],
    "bundle_size": [("riskpo", "riskpo_b1", "pass_at_1")],
    "centring_ablation": [
        ("riskpo_centred", "riskpo", "entropy"),
        ("riskpo_centred", "riskpo", "pass_at_1"),
        ("riskpo_centred", "riskpo", "pass_at_k"),
    ],
}
CLAIM_TEXT = {
    "entropy": "RiskPO keeps entropy above mean-based methods (RiskPO §5, §6): final entropy, equal steps",
    "passk": "RiskPO / RS-GRPO improve pass@k at large k (RiskPO App. B.3, RS-GRPO §6.2): pass@32, equal steps",
    "bundle_size": "bundling beats B = 1 (RiskPO Table 4: B = 1 worst): pass@1 of RiskPO(B) − RiskPO(B = 1)",
    "centring_ablation": "non-paper ablation: RiskPO with its advantage centred per batch − RiskPO "
    "(no claimed direction; 'holds' reads 'centred is higher')",
}


@dataclasses.dataclass(frozen=True)
class MapPoint:
    centre: str
    axis: str  # "centre" for the centre itself
    value: object
    config: dict
    riskpo: dict
    steps: int


def point_specs(riskpo: dict) -> dict[str, tuple[str, dict]]:
    """Role -> estimator spec. ``riskpo_b1`` is left out when RiskPO itself has B = 1 (it would be a copy)."""
    specs = {
        "grpo": ("grpo", {}),
        "dr_grpo": ("dr_grpo", {}),
        "riskpo": ("riskpo", dict(riskpo)),
        "riskpo_centred": ("riskpo_centred", dict(riskpo)),
        "rs_grpo": ("rs_grpo", {"beta": RS_BETA}),
    }
    if int(riskpo["bundle_size"]) != 1:
        specs["riskpo_b1"] = ("riskpo", {**riskpo, "bundle_size": 1})
    return specs


def _points(centres: Sequence[str], axes: Sequence[str], steps: int) -> list[MapPoint]:
    out = []
    for centre in centres:
        base = dict(CENTRES[centre])
        out.append(MapPoint(centre, "centre", None, base, dict(RISKPO_DEFAULT), steps))
        for axis in axes:
            where, values = AXES[axis]
            centre_value = (
                {**TabularConfig().__dict__, **base}.get(axis)
                if where == "config"
                else RISKPO_DEFAULT.get(axis)
                if where == "riskpo"
                else steps
            )
            for value in values:
                if value == centre_value or where == "steps":
                    continue  # the centre run serves it (and every length: see run_point)
                config, riskpo = dict(base), dict(RISKPO_DEFAULT)
                (config if where == "config" else riskpo)[axis] = value
                out.append(MapPoint(centre, axis, value, config, riskpo, steps))
    return out


def _comparisons(final: pd.DataFrame, roles: dict[str, str], step: int) -> list[dict]:
    """Rows for every claim's comparisons at one step; ``final`` is (seed × estimator label) per quantity."""
    rows = []
    for claim, comps in CLAIM_COMPARISONS.items():
        made = []
        for method, baseline, quantity in comps:
            if method not in roles or baseline not in roles:
                continue
            diff = final[quantity][roles[method]] - final[quantity][roles[baseline]]
            made.append(compare(method, baseline, quantity, diff.to_numpy(), framing=PRIMARY))
        if not made:
            continue
        verdict = claim_verdict(made)
        for c in made:
            rows.append({"claim": claim, "claim_verdict": verdict, "step": step, **c.to_dict()})
    return rows


def run_point(point: MapPoint, seeds: int, lengths: Sequence[int] = ()) -> tuple[list[dict], float]:
    """Train every role at one point; comparisons at ``point.steps`` (and at each of ``lengths``, for the
    centre's training-length axis). Returns (rows, measured base accuracy)."""
    specs = point_specs(point.riskpo)
    logged = sorted({0, point.steps, *lengths})
    # every length is a multiple of the stride, so each is logged (and step 0, the base accuracy)
    stride = int(np.gcd.reduce([s for s in logged if s > 0]))
    cfg = TabularConfig(steps=max(logged), k=K, log_every=stride, **point.config)
    res = run_tabular(cfg, list(specs.values()), seeds=seeds, progress=lambda fraction: None)  # no tqdm bar
    m = res.metrics
    labels = dict(zip(specs, dict.fromkeys(m.estimator)))
    base = float(m[m.step == 0].pass_at_1.mean())
    rows = []
    for step in logged:
        if step == 0:
            continue
        at = m[m.step == step]
        final = {
            q: at.pivot(index="seed", columns="estimator", values=q) for q in ("entropy", "pass_at_1", "pass_at_k")
        }
        for row in _comparisons(final, labels, step):
            if step == point.steps:
                rows.append({**_where(point), **row})
            if step in lengths:
                rows.append({**_where(point), "axis": "steps", "value": step, **row})
    for row in rows:
        row["base_accuracy"] = base
    return rows, base


def _where(point: MapPoint) -> dict:
    return {"centre": point.centre, "axis": point.axis, "value": point.value}


@single_thread()
def centring_variance(config: TabularConfig, riskpo: dict, replicates: int = 200, seed: int = 0) -> dict[str, float]:
    """Gradient variance removed by centring RiskPO's advantage per batch, at the initial policy of one problem.

    ``replicates`` independent batches (G responses per prompt) from π₀; per batch the sampled policy
    gradient ĝ = (1/G) Σ_i A_i (e_{y_i} − π) (``theory.updates.sampled_policy_gradient``) with the raw
    MVaR advantage and with the same advantage minus its batch mean (same bundles, same quantiles).
    Quantiles are the batch's own (``quantile_source="batch"``): the tracker's would depend on the order
    of the replicates. Returns total variances Σ_coords Var(ĝ) (ddof = 1), the fraction removed, and
    the distance between the two mean gradients relative to its Monte-Carlo standard error (centring
    per batch removes ~no expected signal: this should be O(1)).
    """
    rewards, logits = make_problem(config, seed)
    probs = torch.softmax(logits, -1)
    g = torch.Generator().manual_seed(int(seed) * 1009 + 7)
    raw_est = get_estimator("riskpo", **{**riskpo, "quantile_source": "batch", "seed": seed})
    cen_est = get_estimator("riskpo_centred", **{**riskpo, "quantile_source": "batch", "seed": seed})
    raw, cen = [], []
    for _ in range(replicates):
        responses = torch.multinomial(probs, config.group_size, replacement=True, generator=g)
        sampled = torch.gather(rewards, -1, responses)
        a_raw, _ = raw_est.compute(sampled, None)
        a_cen, _ = cen_est.compute(sampled, None)  # same seed: same bundle permutation as raw_est
        raw.append(sampled_policy_gradient(probs, responses, a_raw).reshape(-1))
        cen.append(sampled_policy_gradient(probs, responses, a_cen).reshape(-1))
    raw_t, cen_t = torch.stack(raw), torch.stack(cen)
    var_raw, var_cen = float(raw_t.var(0).sum()), float(cen_t.var(0).sum())
    gap = float((raw_t.mean(0) - cen_t.mean(0)).norm())
    se = float(((raw_t - cen_t).var(0).sum() / replicates).sqrt())  # MC s.e. of the gap's norm scale
    return {
        "total_variance_raw": var_raw,
        "total_variance_centred": var_cen,
        "variance_removed_fraction": 1.0 - var_cen / var_raw if var_raw > 0 else float("nan"),
        "mean_gradient_norm_raw": float(raw_t.mean(0).norm()),
        "mean_gradient_gap": gap,
        "mean_gradient_gap_over_se": gap / se if se > 0 else float("nan"),
        "replicates": replicates,
    }


def run_map(
    seeds: int = SEEDS,
    steps: int = STEPS,
    centres: Sequence[str] = tuple(CENTRES),
    axes: Sequence[str] = tuple(AXES),
    replicates: int = 200,
    progress=None,
) -> dict:
    """The whole map: rows (one per point × comparison), the centring variance, the headline, CPU time."""
    for name in centres:
        if name not in CENTRES:
            raise ValueError(f"centre={name!r} must be one of {tuple(CENTRES)}")
    for name in axes:
        if name not in AXES:
            raise ValueError(f"axis={name!r} must be one of {tuple(AXES)}")
    if seeds < 2:
        raise ValueError(f"seeds={seeds} must be >= 2 (an interval across seeds needs two)")
    cpu0, wall0 = time.process_time(), time.time()
    lengths = tuple(AXES["steps"][1]) if "steps" in axes else ()
    points = _points(centres, axes, steps)
    rows, bases = [], {}
    for i, point in enumerate(points):
        if progress:
            progress(f"[{i + 1}/{len(points)}] {point.centre}: {point.axis} = {point.value}")
        point_rows, base = run_point(point, seeds, lengths if point.axis == "centre" else ())
        rows += point_rows
        if point.axis in ("centre", "difficulty"):
            bases[(point.centre, point.config.get("difficulty", "uniform"))] = base
    variance = []
    for centre in centres:
        for difficulty in AXES["difficulty"][1]:
            cfg = TabularConfig(k=K, steps=steps, **{**CENTRES[centre], "difficulty": difficulty})
            variance.append(
                {"centre": centre, "difficulty": difficulty, **centring_variance(cfg, RISKPO_DEFAULT, replicates)}
            )
    cpu, wall = time.process_time() - cpu0, time.time() - wall0
    return {
        "rows": rows,
        "centring_variance": variance,
        "base_accuracy": [{"centre": c, "difficulty": d, "base_accuracy": b} for (c, d), b in bases.items()],
        "headline": headline(rows),
        "settings": {
            "seeds": seeds,
            "steps": steps,
            "k": K,
            "rs_beta": RS_BETA,
            "riskpo": RISKPO_DEFAULT,
            "centres": {c: CENTRES[c] for c in centres},
            "axes": {a: list(AXES[a][1]) for a in axes},
            "comparisons": CLAIM_COMPARISONS,
            "claims": CLAIM_TEXT,
            "interval": "95 % Student-t on per-seed paired differences (sandbox.verdicts)",
            "replicates": replicates,
        },
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "machine": platform.platform(),
    }


def headline(rows: Sequence[dict]) -> dict:
    """Where RiskPO keeps entropy above Dr. GRPO AND improves pass@k over GRPO and Dr. GRPO, at equal steps."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return {"points": [], "text": "no rows"}
    key = ["centre", "axis", "value", "step"]
    frame["value"] = frame["value"].astype(str)
    # the length axis repeats the centre at the centre's own length: count that point once
    centre_steps = set(zip(frame.loc[frame.axis == "centre", "centre"], frame.loc[frame.axis == "centre", "step"]))
    repeat = [(a == "steps" and (c, s) in centre_steps) for a, c, s in zip(frame.axis, frame.centre, frame.step)]
    frame = frame[~np.array(repeat, dtype=bool)]

    def verdicts(method, baseline, quantity):
        sel = frame[(frame.method == method) & (frame.baseline == baseline) & (frame.quantity == quantity)]
        return sel.set_index(key).verdict

    ent = verdicts("riskpo", "dr_grpo", "entropy")
    pk_g = verdicts("riskpo", "grpo", "pass_at_k")
    pk_d = verdicts("riskpo", "dr_grpo", "pass_at_k")
    joined = pd.concat({"entropy_vs_dr_grpo": ent, "passk_vs_grpo": pk_g, "passk_vs_dr_grpo": pk_d}, axis=1).dropna()
    both = joined[(joined == HOLDS).all(axis=1)]
    points = [dict(zip(key, idx)) for idx in both.index]
    n = len(joined)
    counts = {
        name: {v: int((joined[name] == v).sum()) for v in (HOLDS, FAILS, "not resolved")} for name in joined.columns
    }
    text = (
        f"RiskPO keeps entropy above Dr. GRPO and improves pass@{K} over both GRPO and Dr. GRPO at equal steps at "
        f"{len(points)} of {n} map points"
        + (
            ": " + "; ".join(f"{p['centre']} {p['axis']}={p['value']} (step {p['step']})" for p in points)
            if points
            else ""
        )
        + ". Per comparison (holds/fails/not resolved): "
        + "; ".join(f"{k} {v[HOLDS]}/{v[FAILS]}/{v['not resolved']}" for k, v in counts.items())
    )
    return {"points": points, "counts": counts, "text": text, "total": n}


def write(result: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "regime_map.csv", out / "regime_map.json"
    pd.DataFrame(result["rows"]).to_csv(csv_path, index=False)
    json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return csv_path, json_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.regime_map", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for regime_map.csv and regime_map.json")
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"training seeds per point (default {SEEDS})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps per point (default {STEPS})")
    parser.add_argument("--centres", default=",".join(CENTRES), help="comma-separated centres")
    parser.add_argument("--axes", default=",".join(AXES), help="comma-separated axes")
    parser.add_argument("--replicates", type=int, default=200, help="batches per centring-variance estimate")
    args = parser.parse_args(argv)
    try:
        result = run_map(
            seeds=args.seeds,
            steps=args.steps,
            centres=[c for c in args.centres.split(",") if c],
            axes=[a for a in args.axes.split(",") if a],
            replicates=args.replicates,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except ValueError as err:
        parser.error(str(err))
    result["command"] = "python -m sandbox.regime_map " + " ".join(argv if argv is not None else sys.argv[1:])
    csv_path, json_path = write(result, args.out)
    print(result["headline"]["text"])
    print(f"CPU {result['cpu_seconds']:.1f} s, wall {result['wall_seconds']:.1f} s -> {csv_path}, {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
