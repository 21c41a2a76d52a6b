"""Read comparison results and training runs; the tabular-simulator prediction for the same estimators.

Light on purpose (pandas + yaml; torch/sandbox only inside ``simulate``), so the
Streamlit view can load folders without the trainer's imports.

``load_folder(path)`` accepts

* a results folder written by ``python -m llm.compare`` (``curves.csv``,
  ``passk.csv``, ``heldout.csv``, ``simulator_*.csv``, ``runs/*/metrics.jsonl``);
* any training run of ``llm/train.py`` (``metrics.jsonl`` + ``config.yaml``),
  which gives per-step curves only;
* a folder of such runs (e.g. ``runs/``).

metrics.jsonl is read tolerantly: blank or truncated lines (a run killed
mid-write) are skipped and counted, and a metric an older trainer did not log
is simply absent (``missing_metrics`` lists the wanted ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

__all__ = [
    "CURVE_METRICS",
    "Loaded",
    "read_metrics",
    "read_evaluations",
    "load_run",
    "load_folder",
    "curves_from_runs",
    "simulate",
]

# What the comparison plots per step, in this order; other logged columns are kept as well.
CURVE_METRICS = (
    "reward_mean",
    "entropy",
    "cov_logp_adv",
    "frac_zero_adv_groups",
    "frac_zero_adv_bundles",
    "q_alpha",
    "q_beta",
    "completion_length",
)


@dataclass
class Loaded:
    """Everything a view or report needs from one folder; empty frames where the folder has no such data."""

    name: str
    kind: str  # "compare" | "run" | "runs"
    curves: pd.DataFrame  # run, method, seed, step, <metrics>
    passk: pd.DataFrame = field(default_factory=pd.DataFrame)  # policy, method, seed, k, pass_at_k, ci_low, ci_high
    heldout: pd.DataFrame = field(default_factory=pd.DataFrame)  # policy, method, seed, accuracy, entropy, ...
    simulator_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    simulator_passk: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict = field(default_factory=dict)
    skipped_lines: int = 0
    run_dirs: list = field(default_factory=list)  # the llm/train.py run folders the curves came from

    @property
    def missing_metrics(self) -> list[str]:
        return [m for m in CURVE_METRICS if m not in self.curves.columns or self.curves[m].isna().all()]


def read_metrics(path: str | Path) -> tuple[pd.DataFrame, int]:
    """(one row per logged step, number of unreadable lines skipped)."""
    rows, skipped = [], 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            skipped += 1
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append({k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        else:
            skipped += 1
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.drop_duplicates("step", keep="last").sort_values("step").reset_index(drop=True)
    return frame, skipped


def read_evaluations(folder: str | Path) -> dict[str, dict]:
    """policy -> its held-out evaluation record (``eval/<policy>.json``), in file-name order; {} if none."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(folder) / "eval").glob("*.json"))}


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, int]:
    """Curves of one llm/train.py run, labelled with its estimator (method) and seed from config.yaml."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no metrics.jsonl (not an llm/train.py run folder)")
    frame, skipped = read_metrics(metrics_path)
    config = {}
    if (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    frame.insert(0, "run", run_dir.name)
    frame.insert(1, "method", _method_of(run_dir.name, config))
    frame.insert(2, "seed", config.get("seed", 0))
    return frame, skipped


def _method_of(run_name: str, config: dict) -> str:
    # Comparison runs are named <method>-s<seed>; a plain run is labelled by its estimator.
    head, sep, tail = run_name.rpartition("-s")
    if sep and tail.isdigit():
        return head
    return str(config.get("estimator", run_name))


def curves_from_runs(run_dirs) -> tuple[pd.DataFrame, int]:
    frames, skipped = [], 0
    for run_dir in run_dirs:
        frame, bad = load_run(run_dir)
        frames.append(frame)
        skipped += bad
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), skipped


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def load_folder(folder: str | Path) -> Loaded:
    """A comparison results folder, one training run, or a folder of runs (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory")
    if (folder / "metrics.jsonl").is_file():
        curves, skipped = load_run(folder)
        return Loaded(name=folder.name, kind="run", curves=curves, skipped_lines=skipped, run_dirs=[folder])
    runs_root = folder / "runs" if (folder / "runs").is_dir() else folder
    run_dirs = sorted(p for p in runs_root.iterdir() if (p / "metrics.jsonl").is_file())
    is_compare = (folder / "passk.csv").is_file()
    if not run_dirs and not is_compare:
        raise FileNotFoundError(
            f"{folder}: neither a comparison results folder (passk.csv) nor a folder of runs (*/metrics.jsonl)"
        )
    # A shipped results folder has no run directories (checkpoints stay out of the repo): its
    # curves.csv, written by the command from those runs, stands in for them.
    if run_dirs or not (folder / "curves.csv").is_file():
        curves, skipped = curves_from_runs(run_dirs)
    else:
        curves, skipped = _csv(folder / "curves.csv"), 0
    summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
    return Loaded(
        name=summary.get("name", folder.name),
        kind="compare" if is_compare else "runs",
        curves=curves,
        passk=_csv(folder / "passk.csv"),
        heldout=_csv(folder / "heldout.csv"),
        simulator_curves=_csv(folder / "simulator_curves.csv"),
        simulator_passk=_csv(folder / "simulator_passk.csv"),
        summary=summary,
        skipped_lines=skipped,
        run_dirs=run_dirs,
    )


def simulate(methods: dict, settings: dict, ks) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tabular-simulator prediction for the same estimators: (curves per step, final pass@k vs k).

    ``methods``: label -> {estimator, estimator_params}; ``settings``: TabularConfig
    keys plus ``seeds``. The simulator logs pass@k for one k per run, so it runs
    once per k; its random stream does not depend on k, so every run follows the
    same trajectories and only the logged pass@k differs. Values are means over seeds.
    """
    from sandbox.common import estimator_label
    from sandbox.tabular import TabularConfig, run_tabular

    settings = dict(settings)
    seeds = int(settings.pop("seeds", 4))
    specs = [(m["estimator"], dict(m.get("estimator_params") or {})) for m in methods.values()]
    label_to_method = {estimator_label(n, p): label for label, (n, p) in zip(methods, specs)}
    curves, passk = None, []
    for k in ks:
        frame = run_tabular(TabularConfig(**settings, k=int(k)), specs, seeds=seeds).metrics
        frame["method"] = frame["estimator"].map(label_to_method)
        if curves is None:
            # same column name as the trainer's metrics.jsonl, so LM and simulator curves line up
            numeric = frame.drop(columns=["estimator", "seed", "pass_at_k"]).rename(
                columns={"mean_reward": "reward_mean"}
            )
            curves = numeric.groupby(["method", "step"], sort=False).mean().reset_index()
        # The untrained policy (step 0, identical for every estimator) is the simulator's "base".
        first = frame[frame["step"] == 0].assign(method="base").drop_duplicates("seed")
        last = frame[frame["step"] == frame["step"].max()]
        for method, group in pd.concat([first, last]).groupby("method", sort=False):
            passk.append(
                {
                    "method": method,
                    "k": int(k),
                    "pass_at_k": float(group["pass_at_k"].mean()),
                    "pass_at_k_std": float(group["pass_at_k"].std(ddof=0)),
                }
            )
    return curves, pd.DataFrame(passk)
