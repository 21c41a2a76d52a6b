"""Tables, plots and the markdown page of ``llm.compare``, computed from the results folder's own files.

The reading of the paper claims is rule-based, fixed before any run: a claim
"is supported" when the 95 % hierarchical bootstrap interval of the difference
(training seeds of each method resampled, then the shared held-out prompts;
``heldout.hierarchical_difference``) lies above 0, "is contradicted" when it
lies below 0, and is "not resolved" when it contains 0. The prompts-only
paired interval (seeds averaged) is listed next to it. The tabular
simulator's sign of the same difference is listed as the prediction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from llm.compare.figures import plot_curves, plot_passk
from llm.compare.heldout import (
    bootstrap_indices,
    bootstrap_mean,
    hierarchical_difference,
    paired_difference,
    passk_per_prompt,
    passk_table,
)
from llm.compare.results import curves_from_runs, load_folder

__all__ = ["write_results", "claims", "markdown", "method_values", "markdown_table"]

SANITY = "sanity check (not a paper claim)"
#: The columns of claims.csv, in order; the report page shows the same table.
CLAIM_COLUMNS = (
    "claim",
    "source",
    "quantity",
    "difference",
    "estimate",
    "ci_low",
    "ci_high",
    "verdict",
    "seeds_a",
    "seeds_b",
    "prompt_ci_low",
    "prompt_ci_high",
    "simulator_difference",
)
# (claim, source, method a, method b, quantity, k): "a − b > 0" is what the paper predicts.
CLAIMS = [
    (
        "RiskPO keeps policy entropy higher than GRPO",
        "RiskPO Prop. 1 / Thm 2, entropy figures",
        "riskpo",
        "grpo",
        "entropy",
        None,
    ),
    ("RiskPO raises pass@k at the largest k over GRPO", "RiskPO Tables 1-5", "riskpo", "grpo", "pass@k", "max"),
    ("RiskPO does not lose pass@1 to GRPO (paper: it gains)", "RiskPO Tables 1-5", "riskpo", "grpo", "pass@k", 1),
    ("RiskPO does not lose pass@1 to Dr. GRPO (paper: it gains)", "RiskPO Table 1", "riskpo", "dr_grpo", "pass@k", 1),
    (
        "RiskPO raises pass@k at the largest k over Dr. GRPO",
        "RiskPO Table 1, pass@k",
        "riskpo",
        "dr_grpo",
        "pass@k",
        "max",
    ),
    ("RS-GRPO raises pass@k at the largest k over GRPO", "RS-GRPO pass@k curves", "rs_grpo", "grpo", "pass@k", "max"),
    (
        "RS-GRPO keeps policy entropy higher than GRPO",
        "RS-GRPO (risk-seeking keeps exploring)",
        "rs_grpo",
        "grpo",
        "entropy",
        None,
    ),
    # Not paper claims: did training move each policy at all (if not, nothing above can show)?
    ("GRPO training changed pass@1", SANITY, "grpo", "base", "pass@k", 1),
    ("Dr. GRPO training changed pass@1", SANITY, "dr_grpo", "base", "pass@k", 1),
    ("RiskPO training changed pass@1", SANITY, "riskpo", "base", "pass@k", 1),
    ("RS-GRPO training changed pass@1", SANITY, "rs_grpo", "base", "pass@k", 1),
]


def method_values(evaluations: dict, method: str, ks) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-seed, per-prompt pass@k (S, E, K) and entropy (S, E) of a method (seeds in increasing order)."""
    records = sorted(
        (r for r in evaluations.values() if r["method"] == method),
        key=lambda r: -1 if r["seed"] is None else r["seed"],
    )
    if not records:
        return None
    passk = np.stack([passk_per_prompt(np.array(r["correct"]), ks) for r in records])
    entropy = np.stack([np.array(r["entropy"], dtype=float) for r in records])
    return passk, entropy


def _verdict(low: float, high: float) -> str:
    return "supported" if low > 0 else "contradicted" if high < 0 else "not resolved (interval contains 0)"


def claims(
    evaluations: dict, ks, indices: np.ndarray, simulator_passk: pd.DataFrame, simulator_curves: pd.DataFrame
) -> pd.DataFrame:
    """One row per claim whose two methods were evaluated; ci_low/ci_high (the verdict's) are hierarchical."""
    rows = []
    resamples = len(indices)
    for text, source, a, b, quantity, k in CLAIMS:
        va, vb = method_values(evaluations, a, ks), method_values(evaluations, b, ks)
        if va is None or vb is None:
            continue
        if quantity == "entropy":
            xa, xb = va[1], vb[1]
            label = "held-out token entropy"
            sim = _sim_difference(simulator_curves, a, b, "entropy")
        else:
            k_value = ks[-1] if k == "max" else k
            column = list(ks).index(k_value)
            xa, xb = va[0][:, :, column], vb[0][:, :, column]
            label = f"pass@{k_value}"
            sim = _sim_passk_difference(simulator_passk, a, b, k_value)
        diff = hierarchical_difference(xa, xb, resamples, seed=0)
        prompts_only = paired_difference(xa.mean(axis=0), xb.mean(axis=0), indices)
        verdict = (
            _verdict(diff[1], diff[2])
            if source != SANITY
            else ("raised" if diff[1] > 0 else "lowered" if diff[2] < 0 else "no detectable change")
        )
        rows.append(
            {
                "claim": text,
                "source": source,
                "quantity": label,
                "difference": f"{a} − {b}",
                "estimate": diff[0],
                "ci_low": diff[1],
                "ci_high": diff[2],
                "verdict": verdict,
                "seeds_a": len(xa),
                "seeds_b": len(xb),
                "prompt_ci_low": prompts_only[1],
                "prompt_ci_high": prompts_only[2],
                "simulator_difference": sim,
            }
        )
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def _sim_difference(curves: pd.DataFrame, a: str, b: str, column: str) -> float:
    if curves is None or curves.empty:
        return float("nan")
    last = curves[curves["step"] == curves["step"].max()].set_index("method")[column]
    return float(last.get(a, np.nan) - last.get(b, np.nan))


def _sim_passk_difference(passk: pd.DataFrame, a: str, b: str, k: int) -> float:
    if passk is None or passk.empty:
        return float("nan")
    at_k = passk[passk["k"] == k].set_index("method")["pass_at_k"]
    return float(at_k.get(a, np.nan) - at_k.get(b, np.nan))


# ----------------------------------------------------------------------------- plots


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"
    body = [
        "| " + " | ".join(float_format.format(v) if isinstance(v, float) else str(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def _what_was_run(loaded, config: dict, summary: dict, rel: str) -> list[str]:
    """The page's opening: command, machine, the settings of the run, and what is missing from it."""
    machine = summary.get("machine", {})
    lines = [
        f"## Run `{loaded.name}`",
        "",
        f"Written by `{summary.get('command', 'python -m llm.compare')}` on {summary.get('finished_utc', '?')}; "
        f"device: {machine.get('device', '?')} ({machine.get('cpus', '?')} cores). "
        f"Results folder: `{rel}`.",
    ]
    train, ev = config.get("train", {}), config.get("eval", {})
    runs = summary.get("runs", {})
    lines += [
        "",
        "**What was run.** "
        f"Model `{train.get('model')}`, task `{train.get('dataset')}`; methods "
        + ", ".join(
            f"`{m}` ({v.get('estimator')} {v.get('estimator_params') or ''})"
            for m, v in config.get("methods", {}).items()
        )
        + f"; seeds {config.get('seeds')} ({len(runs)} training runs); {train.get('steps')} steps x "
        f"{train.get('prompts_per_step')} prompts x {train.get('group_size')} rollouts, "
        f"{train.get('max_new_tokens')} new tokens, "
        f"lr {train.get('lr')}. Held-out: {ev.get('num_prompts')} prompts x n = {ev.get('n')} samples at "
        f"temperature {ev.get('temperature')}, {ev.get('bootstrap')} bootstrap resamples "
        "(training seeds, then prompts). "
        f"Wall time of this command: {summary.get('timings', {}).get('total_s', float('nan')) / 60:.1f} min "
        "(shared machine: not a benchmark).",
    ]
    if summary.get("unfinished_runs") or summary.get("missing_evaluations"):
        lines += [
            "",
            "**Incomplete run.** Written with `--report-only` before everything finished. Unfinished "
            "training runs (curves shown up to their last logged step): "
            + (", ".join(f"`{n}` ({v})" for n, v in summary.get("unfinished_runs", {}).items()) or "none")
            + ". Policies not evaluated (absent from the tables and the reading): "
            + (", ".join(f"`{n}`" for n in summary.get("missing_evaluations", [])) or "none")
            + ".",
        ]
    if loaded.missing_metrics:
        lines += [
            "",
            "Not logged by the trainer in this run (shown as missing, not recomputed): "
            + ", ".join(f"`{m}`" for m in loaded.missing_metrics)
            + ".",
        ]
    return lines


def markdown(out: Path, loaded, claim_rows: pd.DataFrame, config: dict, summary: dict, rel: str) -> str:
    """The page: what was run, the pass@k table, held-out entropy, the claims reading, plots."""
    lines = _what_was_run(loaded, config, summary, rel)
    if loaded.passk.empty:
        lines += ["", "No policy was evaluated on the held-out prompts in this run: no pass@k table, no reading."]
        lines += ["", f"![per-step curves]({rel}/curves.png)"]
        return "\n".join(lines) + "\n"
    table = loaded.passk.pivot_table(index="policy", columns="k", values="pass_at_k", sort=False)
    low = loaded.passk.pivot_table(index="policy", columns="k", values="ci_low", sort=False)
    high = loaded.passk.pivot_table(index="policy", columns="k", values="ci_high", sort=False)
    cells = pd.DataFrame(
        {
            f"pass@{k}": [f"{table.loc[p, k]:.3f} [{low.loc[p, k]:.2f}, {high.loc[p, k]:.2f}]" for p in table.index]
            for k in table.columns
        }
    )
    cells.insert(0, "policy", list(table.index))
    lines += ["", "### pass@k on held-out prompts (mean [95% bootstrap CI])", "", markdown_table(cells)]
    held = loaded.heldout[["policy", "accuracy", "entropy", "entropy_ci_low", "entropy_ci_high", "completion_length"]]
    lines += ["", "### Held-out accuracy and token entropy", "", markdown_table(held)]
    if not claim_rows.empty:
        shown = claim_rows[list(CLAIM_COLUMNS)]
        lines += [
            "",
            "### Reading (rule: 95% hierarchical bootstrap interval, seeds then prompts, above / below / containing 0)",
            "",
            "`ci_low`/`ci_high`: resample each method's training seeds, then the shared held-out prompts "
            "(the verdict's interval); `prompt_ci_*`: prompts only, seeds averaged (for reference).",
            "",
            markdown_table(shown),
            "",
            _reading(claim_rows, loaded),
        ]
    lines += ["", f"![per-step curves]({rel}/curves.png)", "", f"![pass@k vs k]({rel}/passk.png)"]
    return "\n".join(lines) + "\n"


def _reading(claim_rows: pd.DataFrame, loaded) -> str:
    paper = claim_rows[claim_rows["source"] != SANITY]
    sanity = claim_rows[claim_rows["source"] == SANITY]
    supported = paper[paper["verdict"] == "supported"]["claim"].tolist()
    contradicted = paper[paper["verdict"] == "contradicted"]["claim"].tolist()
    open_ = paper[paper["verdict"].str.startswith("not resolved")]["claim"].tolist()
    width = (paper["ci_high"] - paper["ci_low"]).median()
    agree = int((np.sign(paper["estimate"]) == np.sign(paper["simulator_difference"])).sum())
    seeds = int(paper[["seeds_a", "seeds_b"]].min().min()) if not paper.empty else 0
    parts = [
        f"Supported by this run: {'; '.join(supported) if supported else 'none'}.",
        f"Contradicted: {'; '.join(contradicted) if contradicted else 'none'}.",
        f"Not resolved: {'; '.join(open_) if open_ else 'none'}.",
        f"The median width of the 95% intervals is {width:.3f}; they cover training seeds ({seeds} per method, "
        "resampled) and held-out prompts (resampled)"
        + (" - with one seed per method, seed-to-seed variation is not covered." if seeds < 2 else "."),
        f"The simulator's prediction has the same sign as the measured difference in {agree} of {len(paper)} rows.",
    ]
    moved = sanity[sanity["verdict"] != "no detectable change"]["claim"].tolist()
    still = sanity[sanity["verdict"] == "no detectable change"]["claim"].tolist()
    if still:
        parts.append(
            f"No detectable change from the base model at pass@1 for: {'; '.join(still)}; where the "
            "policy did not move, a null result on the claims above says little about the methods."
        )
    if moved:
        parts.append(f"Detectable change from the base model: {'; '.join(moved)}.")
    curves = loaded.curves
    if not curves.empty and "entropy" in curves.columns:
        by_step = curves.groupby(["method", "step"])["entropy"].mean()
        parts.append(
            "Training-time token entropy, first -> last logged step: "
            + ", ".join(
                f"{m} {s.iloc[0]:.3f} (step {s.index[0]}) -> {s.iloc[-1]:.3f} (step {s.index[-1]})"
                for m, s in ((m, by_step.loc[m].dropna()) for m in by_step.index.get_level_values(0).unique())
                if len(s)
            )
            + "."
        )
    return " ".join(parts)


# ----------------------------------------------------------------------------- all files


def write_results(
    out: Path, evaluations: dict, ks, bootstrap: int, doc: Path | None = None, appendix: str = ""
) -> None:
    """curves.csv, passk.csv, heldout.csv, claims.csv, curves.png, passk.png, report.md (and ``doc``);
    ``appendix`` (markdown, e.g. ``horizon.horizon_report``'s section) ends the page and the doc section."""
    import yaml

    out = Path(out)
    run_dirs = (
        sorted(p for p in (out / "runs").iterdir() if (p / "metrics.jsonl").is_file())
        if (out / "runs").is_dir()
        else []
    )
    if run_dirs or not (out / "curves.csv").is_file():
        curves, _ = curves_from_runs(run_dirs)
        curves.to_csv(out / "curves.csv", index=False)
    # else: a shipped folder without its runs/ keeps the curves.csv written when the runs were there
    num_prompts = len(next(iter(evaluations.values()))["correct"]) if evaluations else 1
    indices = bootstrap_indices(num_prompts, bootstrap, seed=0)
    passk_rows, held_rows = [], []
    for name, record in evaluations.items():
        correct = np.array(record["correct"])
        for row in passk_table(correct, ks, indices):
            passk_rows.append({"policy": name, "method": record["method"], "seed": record["seed"], **row})
        mean, low, high = bootstrap_mean(np.array(record["entropy"]), indices)
        held_rows.append(
            {
                "policy": name,
                "method": record["method"],
                "seed": record["seed"],
                "accuracy": float(correct.mean()),
                "entropy": float(mean),
                "entropy_ci_low": float(low),
                "entropy_ci_high": float(high),
                "completion_length": record["completion_length"],
            }
        )
    passk_columns = ["policy", "method", "seed", "k", "pass_at_k", "ci_low", "ci_high"]
    held_columns = [
        "policy",
        "method",
        "seed",
        "accuracy",
        "entropy",
        "entropy_ci_low",
        "entropy_ci_high",
        "completion_length",
    ]
    pd.DataFrame(passk_rows, columns=passk_columns).to_csv(out / "passk.csv", index=False)
    pd.DataFrame(held_rows, columns=held_columns).to_csv(out / "heldout.csv", index=False)
    loaded = load_folder(out)
    claim_rows = claims(evaluations, list(ks), indices, loaded.simulator_passk, loaded.simulator_curves)
    claim_rows.to_csv(out / "claims.csv", index=False)
    plot_curves(loaded.curves, loaded.simulator_curves, out / "curves.png")
    plot_passk(loaded.passk, loaded.simulator_passk, out / "passk.png")
    config = yaml.safe_load((out / "config.yaml").read_text()) if (out / "config.yaml").is_file() else {}
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    (out / "report.md").write_text(markdown(out, loaded, claim_rows, config, summary, rel=".") + appendix)
    if doc is not None:
        _write_doc(Path(doc), out, loaded, claim_rows, config, summary, appendix)


def _write_doc(doc: Path, out: Path, loaded, claim_rows, config, summary, appendix: str = "") -> None:
    """Replace this run's section of the page (between markers), keeping the page's hand-written intro."""
    import os

    rel = os.path.relpath(out.resolve(), doc.resolve().parent)
    section = markdown(out, loaded, claim_rows, config, summary, rel=rel) + appendix
    begin, end = f"<!-- compare:{loaded.name}:begin -->", f"<!-- compare:{loaded.name}:end -->"
    text = doc.read_text() if doc.is_file() else "# Real-model comparison: GRPO vs RiskPO vs RS-GRPO\n"
    block = f"{begin}\n{section}{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
