"""Longer-horizon reading of ``llm.compare``: does a pass@1 gap of a short run close in a longer one?

A compare config with a ``horizon:`` block (``llm/configs/compare_long.yaml``) names a shorter run's
results folder and the training seeds the two runs share. Both runs evaluated their policies on the
same held-out prompts with the same samples, so for each difference a − b (RiskPO − GRPO = ``d``,
RiskPO − Dr. GRPO = ``d_dr``) and each k the short and the long run each give an estimate and a 95 %
hierarchical bootstrap interval (``heldout.hierarchical_difference``: each method's training seeds
resampled, then the shared prompts, exactly the interval of ``report.claims``), the short run's
restricted to the shared seeds. The rule declared before the long run (``RULE``, quoted in the
report and in horizon.json) turns the pass@1 intervals into one word per difference; the other k's
are reported with the same intervals but are not part of the rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from llm.compare.heldout import hierarchical_difference
from llm.compare.report import markdown_table, method_values
from llm.compare.results import load_folder, read_evaluations

__all__ = [
    "COMPARISONS",
    "CLOSED",
    "NOT_CLOSED",
    "NOT_COMPARABLE",
    "RULE",
    "RULE_K",
    "closing_verdict",
    "compare_horizons",
    "reward_curves",
    "markdown_section",
    "write_horizon",
    "horizon_report",
]

#: (name, method a, method b): the differences a − b the rule is applied to.
COMPARISONS = (("d", "riskpo", "grpo"), ("d_dr", "riskpo", "dr_grpo"))
CLOSED, NOT_CLOSED, NOT_COMPARABLE = "closed", "not closed", "not comparable"
#: The closing rule of llm/configs/compare_long.yaml (WHAT COUNTS AS CLOSING), declared before the
#: long run; "the interval" is the 95 % hierarchical interval of the difference at k = RULE_K.
RULE_K = 1
RULE = {
    CLOSED: "the interval contains 0 or lies above 0 in the long run, while in the short run "
    "(same seeds) it lay below 0",
    NOT_CLOSED: "the interval lies below 0 in the long run too",
    NOT_COMPARABLE: "the short-run interval already contained 0 or lay above 0 (nothing to close)",
}
INTERVAL = (
    "95 % hierarchical bootstrap interval (each method's training seeds resampled, then the shared "
    "held-out prompts; llm.compare.heldout.hierarchical_difference)"
)
NOT_IN_RULE = "reported, not part of the rule"


def closing_verdict(short_high: float, long_high: float) -> str:
    """The rule's word from the upper ends of the short and the long interval ("below 0": high < 0)."""
    if not short_high < 0:
        return NOT_COMPARABLE
    return NOT_CLOSED if long_high < 0 else CLOSED


def _evaluations(folder: Path, seeds) -> dict:
    """The folder's trained policies of the given seeds (the base model has no seed and plays no part)."""
    return {n: r for n, r in read_evaluations(folder).items() if r["seed"] is not None and r["seed"] in seeds}


def _samples_per_prompt(short: dict, long: dict) -> int:
    """n, after checking that both runs sampled the same held-out prompts with the same n."""
    shapes = {np.shape(r["correct"]) for r in [*short.values(), *long.values()]}
    if len(shapes) != 1:
        raise ValueError(f"horizon: the two runs' eval matrices differ in shape (prompts x samples): {sorted(shapes)}")
    prompt_ids = {tuple(r["prompt_ids"]) for r in [*short.values(), *long.values()] if "prompt_ids" in r}
    if len(prompt_ids) > 1:
        raise ValueError("horizon: the two runs were evaluated on different held-out prompts (prompt_ids differ)")
    return int(shapes.pop()[1])


def _missing(records: dict, methods, seeds) -> list[str]:
    have = {(r["method"], r["seed"]) for r in records.values()}
    return [f"{m}-s{s}" for m in methods for s in seeds if (m, s) not in have]


def _run_differences(records: dict, a: str, b: str, ks, bootstrap: int, bootstrap_seed: int) -> list[dict]:
    """Per k: estimate and hierarchical interval of pass@k(a) − pass@k(b) (NaN where a method is absent)."""
    va, vb = method_values(records, a, ks), method_values(records, b, ks)
    if va is None or vb is None:
        nan = float("nan")
        return [{"estimate": nan, "ci_low": nan, "ci_high": nan, "seeds_a": 0, "seeds_b": 0} for _ in ks]
    out = []
    for column in range(len(ks)):
        xa, xb = va[0][:, :, column], vb[0][:, :, column]
        estimate, low, high = hierarchical_difference(xa, xb, bootstrap, seed=bootstrap_seed)
        out.append({"estimate": estimate, "ci_low": low, "ci_high": high, "seeds_a": len(xa), "seeds_b": len(xb)})
    return out


def compare_horizons(
    short_dir, long_dir, seeds, ks=None, bootstrap: int = 2000, bootstrap_seed: int = 0
) -> pd.DataFrame:
    """One row per (difference, k): the short- and long-run estimate and interval, and the verdict.

    ``seeds``: the training seeds of both runs to use (the short run's others are left out). ``ks``:
    default [1, n]. The verdict is the rule's word at k = RULE_K, "incomplete (...)" where a policy of
    either run was not evaluated, and NOT_IN_RULE at the other k's.
    """
    seeds = sorted({int(s) for s in seeds})
    short, long = _evaluations(Path(short_dir), seeds), _evaluations(Path(long_dir), seeds)
    n = _samples_per_prompt(short, long)
    ks = [RULE_K, n] if ks is None else sorted({int(k) for k in ks})
    if RULE_K not in ks or not all(1 <= k <= n for k in ks):
        raise ValueError(f"horizon: ks={ks} must include {RULE_K} and lie in [1, n={n}]")
    rows, runs = [], {"short": short, "long": long}
    for name, a, b in COMPARISONS:
        per_run = {run: _run_differences(r, a, b, ks, bootstrap, bootstrap_seed) for run, r in runs.items()}
        missing = [f"{run}: {p}" for run, r in runs.items() for p in _missing(r, (a, b), seeds)]
        for index, k in enumerate(ks):
            row = {"difference": name, "a": a, "b": b, "k": k, "quantity": f"pass@{k}"}
            for run in ("short", "long"):
                row.update({f"{run}_{key}": value for key, value in per_run[run][index].items()})
            if k != RULE_K:
                row["verdict"] = NOT_IN_RULE
            elif missing:
                row["verdict"] = f"incomplete (not evaluated: {', '.join(missing)})"
            else:
                row["verdict"] = closing_verdict(row["short_ci_high"], row["long_ci_high"])
            rows.append(row)
    return pd.DataFrame(rows)


def _steps(folder: Path, curves: pd.DataFrame) -> int | None:
    """train.steps of the folder's config.yaml, else the last logged step."""
    config_path = folder / "config.yaml"
    config = (yaml.safe_load(config_path.read_text()) or {}) if config_path.is_file() else {}
    steps = (config.get("train") or {}).get("steps")
    if steps is None and not curves.empty:
        steps = int(curves["step"].max())
    return None if steps is None else int(steps)


def reward_curves(folder, seeds, methods) -> tuple[pd.DataFrame, int | None]:
    """(rows {method, step, reward_mean, seeds}: training reward per step averaged over the given seeds
    of each method, the run's number of steps). Empty when the folder has no curves."""
    folder = Path(folder)
    try:
        curves = load_folder(folder).curves
    except FileNotFoundError:
        curves = pd.DataFrame()
    columns = ["method", "step", "reward_mean", "seeds"]
    if curves.empty or "reward_mean" not in curves.columns:
        return pd.DataFrame(columns=columns), _steps(folder, pd.DataFrame())
    chosen = curves[curves["method"].isin(methods) & curves["seed"].isin(list(seeds))].dropna(subset=["reward_mean"])
    grouped = chosen.groupby(["method", "step"])
    frame = grouped["reward_mean"].mean().to_frame().join(grouped["seed"].nunique().rename("seeds")).reset_index()
    return frame[columns], _steps(folder, curves)


def _interval(row: pd.Series, run: str) -> str:
    if np.isnan(row[f"{run}_estimate"]):
        return "not evaluated"
    return f"{row[f'{run}_estimate']:.3f} [{row[f'{run}_ci_low']:.3f}, {row[f'{run}_ci_high']:.3f}]"


def _curve_table(curves: dict) -> pd.DataFrame:
    """step x (method, run) table of the mean training reward; '-' where a run has no such step."""
    columns = {}
    for method in dict.fromkeys(m for _, a, b in COMPARISONS for m in (b, a)):
        for run, (frame, steps) in curves.items():
            series = frame[frame["method"] == method].set_index("step")["reward_mean"]
            columns[f"{method} ({run}, {steps} steps)"] = series
    table = pd.DataFrame(columns).sort_index()
    out = table.apply(lambda col: col.map(lambda v: "-" if pd.isna(v) else f"{v:.3f}"))
    out.insert(0, "step", [str(s) for s in table.index])
    return out.reset_index(drop=True)


def markdown_section(result: dict) -> str:
    """The report's section: the rule quoted, the table of intervals, the verdicts, the reward curves."""
    rows, seeds = result["rows"], ", ".join(map(str, result["seeds"]))
    short_steps, long_steps = result["short_steps"], result["long_steps"]
    table = pd.DataFrame(
        {
            "difference": [f"{r['difference']} = {r['a']} − {r['b']}" for _, r in rows.iterrows()],
            "quantity": rows["quantity"],
            f"short run ({short_steps} steps)": [_interval(r, "short") for _, r in rows.iterrows()],
            f"long run ({long_steps} steps)": [_interval(r, "long") for _, r in rows.iterrows()],
            "verdict": rows["verdict"],
        }
    )
    rule = rows[rows["k"] == RULE_K]
    verdicts = "; ".join(f"{r['difference']} ({r['a']} − {r['b']}): **{r['verdict']}**" for _, r in rule.iterrows())
    lines = [
        "",
        f"### Longer horizon: pass@1 gaps after {long_steps} vs {short_steps} steps",
        "",
        f"Short run: `{result['short_run']}` ({short_steps} steps), restricted to seeds {seeds}; long run: "
        f"`{result['long_run']}` ({long_steps} steps), seeds {seeds}; same held-out prompts and samples. "
        f"Cells: estimate [{INTERVAL}; {result['bootstrap']} resamples, bootstrap seed {result['bootstrap_seed']}].",
        "",
        f"**Rule (declared before the long run, applied at pass@{RULE_K}).** "
        + "; ".join(f'"{word}": {text}' for word, text in RULE.items())
        + f". Other k: {NOT_IN_RULE}.",
        "",
        markdown_table(table),
        "",
        f"**Verdict.** {verdicts}.",
        "",
        f"#### Mean training reward per step (seeds {seeds} averaged)",
        "",
        markdown_table(_curve_table(result["curves"])),
    ]
    return "\n".join(lines) + "\n"


def _horizon(short_dir, long_dir, seeds, ks=None, bootstrap: int = 2000, bootstrap_seed: int = 0) -> dict:
    """compare_horizons plus the curves and settings the section and horizon.json show."""
    methods = sorted({m for _, a, b in COMPARISONS for m in (a, b)})
    seeds = sorted({int(s) for s in seeds})
    short_curves, short_steps = reward_curves(short_dir, seeds, methods)
    long_curves, long_steps = reward_curves(long_dir, seeds, methods)
    return {
        "short_run": str(short_dir),
        "long_run": str(long_dir),
        "seeds": seeds,
        "bootstrap": int(bootstrap),
        "bootstrap_seed": int(bootstrap_seed),
        "rows": compare_horizons(short_dir, long_dir, seeds, ks, bootstrap, bootstrap_seed),
        "short_steps": short_steps,
        "long_steps": long_steps,
        "curves": {"short": (short_curves, short_steps), "long": (long_curves, long_steps)},
    }


def write_horizon(out, result: dict) -> None:
    """horizon.csv (the rows) and horizon.json (rule, settings, rows, reward curves) into ``out``."""
    out = Path(out)
    result["rows"].to_csv(out / "horizon.csv", index=False)
    payload = {key: result[key] for key in ("short_run", "long_run", "seeds", "bootstrap", "bootstrap_seed")}
    payload.update(
        rule={"k": RULE_K, "interval": INTERVAL, "verdicts": RULE, "other_k": NOT_IN_RULE},
        steps={"short": result["short_steps"], "long": result["long_steps"]},
        rows=json.loads(result["rows"].to_json(orient="records")),
        reward_curves={run: frame.to_dict("records") for run, (frame, _) in result["curves"].items()},
    )
    (out / "horizon.json").write_text(json.dumps(payload, indent=2) + "\n")


def horizon_report(out, settings: dict, bootstrap: int, bootstrap_seed: int = 0) -> str:
    """For the CLI: the config's ``horizon:`` block applied to the results folder ``out`` (the long run);
    writes horizon.csv/json there and returns the markdown section."""
    short_dir = Path(settings["short_run"])
    if not (short_dir / "eval").is_dir():
        raise FileNotFoundError(f"horizon.short_run={settings['short_run']!r}: no eval/ folder at {short_dir}")
    result = _horizon(short_dir, Path(out), settings["seeds"], None, bootstrap, bootstrap_seed)
    write_horizon(out, result)
    return markdown_section(result)
