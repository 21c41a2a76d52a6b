"""GRPO vs RiskPO vs RS-GRPO on a real language model, end to end, by one command.

    python -m llm.compare --config llm/configs/compare.yaml --out docs/compare/cpu-smollm2
    python -m llm.compare --config llm/configs/compare.yaml --out /tmp/cmp --quick   # tiny model, 2 steps (CI)

1. train: for every seed and method, ``llm/train.py`` runs as a subprocess on the
   same base model, prompts, seed, rollouts per step and token budget; only the
   estimator differs (config ``methods``). Runs go to ``--work-dir`` (checkpoints
   stay there); a run whose final checkpoint exists is reused, so a killed
   comparison resumes where it stopped.
2. evaluate: the base model and every final policy sample n completions on the
   same held-out prompts with the same seeds (``llm.compare.heldout``).
3. predict: the tabular simulator (``sandbox.tabular``) runs the same estimators.
4. report: the results folder (CSV/JSON/PNG, no weights) and the markdown page
   (``--doc``, default docs/llm_compare.md for a full run) are written from
   those numbers by ``llm.compare.report``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from llm.compare.config import CompareConfig, EvalSettings, load_config

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DOC = REPO / "docs" / "llm_compare.md"


# ----------------------------------------------------------------------------- steps


def final_model_dir(run_dir: Path) -> Path | None:
    """The exported model of the run's newest finished checkpoint, or None."""
    from llm.checkpoint import resolve_checkpoint

    try:
        checkpoint = resolve_checkpoint("latest", run_dir / "checkpoints")
    except FileNotFoundError:
        return None
    model_dir = checkpoint / "model"
    return model_dir if (model_dir / "config.json").is_file() else None


def _completed_steps(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [json.loads(line).get("step", 0) for line in path.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def plan_runs(cfg: CompareConfig, work_dir: Path) -> dict[str, dict]:
    """run name -> {method, seed, dir}: every (seed, method) of the config, in order."""
    return {
        cfg.run_name(method, seed): {
            "method": method,
            "seed": seed,
            "dir": work_dir / "runs" / cfg.run_name(method, seed),
            "seconds": None,
            "reused": True,
        }
        for seed in cfg.seeds
        for method in cfg.methods
    }


def _live_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is one of ours (a trainer or llm.compare)."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:  # a recycled pid may belong to anything else
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid
    return pid if b"train.py" in command or b"llm.compare" in command else None


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def train_all(cfg: CompareConfig, runs: dict[str, dict], jobs: int = 1, log=print) -> dict[str, dict]:
    """Train every planned run, ``jobs`` at a time, reusing finished ones.

    A run whose ``<name>.pid`` names a live trainer (an earlier, interrupted
    comparison, or one started by hand with the same config) is waited for, not
    restarted; any other half-finished run restarts from scratch, since its curve
    must come from one run.
    """
    steps = int(cfg.train.get("steps", 1))

    def finished(name: str) -> bool:
        return final_model_dir(runs[name]["dir"]) is not None and _completed_steps(runs[name]["dir"]) >= steps

    pending, running = list(runs), {}
    while pending or running:
        for name, (proc, handle, started) in list(running.items()):
            code = (
                proc.poll()
                if proc is not None
                else (None if _live_pid(runs[name]["dir"].parent / f"{name}.pid") else 0)
            )
            if code is None:
                continue
            del running[name]
            if handle is not None:
                handle.close()
            if code != 0 or not finished(name):
                tail = (runs[name]["dir"].parent / f"{name}.log").read_text()[-3000:]
                raise RuntimeError(f"training {name} failed (exit {code}); log tail:\n{tail}")
            runs[name].update(seconds=time.perf_counter() - started, reused=False)
            log(f"[compare] {name} trained ({runs[name]['seconds']:.0f} s in this process)")
        while pending and len(running) < jobs:
            name = pending.pop(0)
            run_dir, pid_file = runs[name]["dir"], runs[name]["dir"].parent / f"{name}.pid"
            if finished(name):
                log(f"[compare] {name}: finished run found in {run_dir}, reused")
                continue
            if _live_pid(pid_file):
                log(f"[compare] {name}: a trainer is already running it (pid {pid_file.read_text().strip()}), waiting")
                running[name] = (None, None, time.perf_counter())
                continue
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            config_path = run_dir.parent / f"{name}.yaml"
            config_path.write_text(
                yaml.safe_dump(cfg.train_values(runs[name]["method"], runs[name]["seed"], run_dir), sort_keys=False)
            )
            command = [sys.executable, str(REPO / "llm" / "train.py"), "--config", str(config_path)]
            log(f"[compare] training {name}: {' '.join(command)}")
            handle = open(run_dir.parent / f"{name}.log", "w")
            proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=handle, stderr=subprocess.STDOUT)
            pid_file.write_text(str(proc.pid))
            running[name] = (proc, handle, time.perf_counter())
        if running:
            time.sleep(2)
    return runs


def _training_questions(cfg: CompareConfig) -> set[str]:
    from llm.data import load_dataset_examples

    limit = int(cfg.train.get("dataset_limit", 0) or 0) or None
    return {e.question for s in cfg.seeds for e in load_dataset_examples(cfg.train["dataset"], limit=limit, seed=s)}


def _policies(runs: dict, only: set[str] | None = None) -> dict[str, dict]:
    policies = {"base": {"method": "base", "seed": None, "model_dir": None}}
    for name, run in runs.items():
        if only is not None and name not in only:
            continue
        model_dir = final_model_dir(run["dir"])
        if model_dir is None:
            raise RuntimeError(f"run {name}: no exported model under {run['dir'] / 'checkpoints'}")
        policies[name] = {"method": run["method"], "seed": run["seed"], "model_dir": model_dir}
    return policies


def _reusable(done: Path, policy: dict, prompt_ids: list[str], settings: EvalSettings) -> dict | None:
    """An earlier evaluation of the same policy on the same prompts with the same n, not older than the model."""
    if not done.is_file() or (policy["model_dir"] and policy["model_dir"].stat().st_mtime > done.stat().st_mtime):
        return None
    record = json.loads(done.read_text())
    same = record.get("prompt_ids") == prompt_ids and len(record["correct"][0]) == settings.n
    return record if same and record.get("max_new_tokens", settings.max_new_tokens) == settings.max_new_tokens else None


def evaluate_all(cfg: CompareConfig, runs: dict, out: Path, only: set[str] | None = None, log=print) -> dict[str, dict]:
    """Sample the base model and every final policy (or those in ``only``) on the held-out prompts.

    Writes out/eval/<policy>.json; a matching earlier evaluation is reused.
    """
    import torch

    from llm.compare.heldout import heldout_examples, sample_policy
    from llm.config import TrainConfig
    from llm.data import DEFAULT_SYSTEM_PROMPT
    from llm.model import load_model_and_tokenizer
    from llm.rewards import RewardPipeline

    settings = cfg.eval
    examples = heldout_examples(cfg.train["dataset"], settings.num_prompts, settings.seed, _training_questions(cfg))
    prompt_ids = [e.id for e in examples]
    base_cfg = TrainConfig.from_dict(
        cfg.train_values(next(iter(cfg.methods)), cfg.seeds[0], out), source="compare config"
    )
    system_prompt = base_cfg.system_prompt or DEFAULT_SYSTEM_PROMPT
    policies = {n: p for n, p in _policies(runs, only).items() if only is None or n in only}
    (out / "eval").mkdir(parents=True, exist_ok=True)
    results = {}
    workers = int(cfg.train.get("reward_workers", 2))
    with RewardPipeline([(settings.accuracy_reward, 1.0)], num_workers=workers, timeout_s=5.0) as rewards:
        for name, policy in policies.items():
            started = time.perf_counter()
            done = out / "eval" / f"{name}.json"
            record = _reusable(done, policy, prompt_ids, settings)
            if record is not None:
                results[name] = record
                log(f"[compare] eval {name}: reused {done}")
                continue
            if policy["model_dir"] is None:
                from llm.train import load_policy  # the exact base model the trainer starts from (tiny-random too)

                model, tokenizer = load_policy(base_cfg)
            else:
                model, tokenizer = load_model_and_tokenizer(str(policy["model_dir"]), dtype=torch.float32)
            sampled = sample_policy(
                model,
                tokenizer,
                examples,
                n=settings.n,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                system_prompt=system_prompt,
                reward_pipeline=rewards,
                accuracy_reward=settings.accuracy_reward,
                seed=settings.seed,
                prompts_per_call=settings.prompts_per_call,
                entropy_samples=settings.entropy_samples,
                label=f"eval {name}",
            )
            del model
            record = {
                "policy": name,
                "method": policy["method"],
                "seed": policy["seed"],
                "prompt_ids": prompt_ids,
                "max_new_tokens": settings.max_new_tokens,
                "correct": sampled["correct"].astype(int).tolist(),
                "entropy": sampled["entropy"].tolist(),
                "completion_length": sampled["completion_length"],
                "samples": sampled["samples"],
                "seconds": time.perf_counter() - started,
            }
            done.write_text(json.dumps(record))
            results[name] = record
            log(
                f"[compare] eval {name}: accuracy {sampled['correct'].mean():.3f}, "
                f"entropy {sampled['entropy'].mean():.3f}, {record['seconds']:.0f} s"
            )
    return results


def evaluate_in_subprocesses(args: argparse.Namespace, policies: list[str], jobs: int, log=print) -> None:
    """``--eval-policy NAME`` subprocesses, ``jobs`` at a time (each loads one model: memory ~ jobs x model)."""
    base = [
        sys.executable,
        "-m",
        "llm.compare",
        "--config",
        args.config,
        "--out",
        args.out,
        "--work-dir",
        str(args.work_dir),
    ] + (["--quick"] if args.quick else [])
    pending, running = list(policies), {}
    while pending or running:
        for name, proc in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                raise RuntimeError(
                    f"evaluating {name} failed (exit {proc.returncode}); see {args.work_dir}/eval-logs/{name}.log"
                )
        while pending and len(running) < jobs:
            name = pending.pop(0)
            log(f"[compare] evaluating {name} in a subprocess")
            logs = Path(args.work_dir) / "eval-logs"  # progress bars: not results, kept out of the results folder
            logs.mkdir(parents=True, exist_ok=True)
            with open(logs / f"{name}.log", "w") as handle:
                running[name] = subprocess.Popen(
                    base + ["--eval-policy", name], cwd=REPO, env=_env(), stdout=handle, stderr=subprocess.STDOUT
                )
        if running:
            time.sleep(2)


def copy_run_logs(runs: dict, out: Path) -> None:
    """metrics.jsonl and config.yaml of each run into out/runs/<name>/ (never checkpoints)."""
    for name, run in runs.items():
        if not (run["dir"] / "metrics.jsonl").is_file():
            continue
        target = out / "runs" / name
        target.mkdir(parents=True, exist_ok=True)
        for file in ("metrics.jsonl", "config.yaml"):
            if (run["dir"] / file).is_file():
                shutil.copy2(run["dir"] / file, target / file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m llm.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "llm" / "configs" / "compare.yaml"))
    parser.add_argument("--out", required=True, help="results folder (CSV/JSON/PNG and report.md; no weights)")
    parser.add_argument("--work-dir", default=None, help="training runs and checkpoints (default runs/compare/<name>)")
    parser.add_argument("--quick", action="store_true", help="CI setting: tiny random model, 2 steps per method")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="training runs / policy evaluations at once (each holds a model; a SmolLM2 trainer peaks at ~7.5 GB)",
    )
    parser.add_argument(
        "--doc",
        default=None,
        help=f"markdown page to write (default {DEFAULT_DOC.relative_to(REPO)} without --quick; 'none' to skip)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train and evaluate nothing: write the report from the runs and evaluations that exist "
        "(unfinished runs and missing evaluations are listed in it)",
    )
    parser.add_argument("--eval-policy", default=None, help=argparse.SUPPRESS)  # internal: one policy, then exit
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} must be >= 1")
    return args


def train_and_evaluate(cfg: CompareConfig, runs: dict, out: Path, args: argparse.Namespace, timings: dict) -> dict:
    """Train then evaluate in groups of --jobs runs (seed by seed, in the config's method order), the base
    model first: a comparison stopped part-way has every finished run evaluated, and --report-only reads them."""
    timings["train_s"] = timings["eval_s"] = 0.0
    names = list(runs)
    groups = [names[i : i + args.jobs] for i in range(0, len(names), args.jobs)]
    for index, group in enumerate(groups):
        t0 = time.perf_counter()
        train_all(cfg, {n: runs[n] for n in group}, jobs=args.jobs)
        timings["train_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        policies = (["base"] if index == 0 else []) + group
        if args.jobs > 1:
            (out / "eval").mkdir(exist_ok=True)
            evaluate_in_subprocesses(args, policies, args.jobs)
        evaluate_all(cfg, runs, out, only=set(policies))
        timings["eval_s"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluations = evaluate_all(cfg, runs, out)  # every policy, all reused from the files above
    timings["eval_s"] += time.perf_counter() - t0
    return evaluations


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "device": "cpu" if not _cuda_available() else "cuda",
    }


def main(argv=None) -> Path:
    from llm.compare import report as compare_report
    from llm.compare.horizon import horizon_report
    from llm.compare.results import read_evaluations, simulate

    args = parse_args(argv)
    cfg = load_config(args.config, quick=args.quick)
    out = Path(args.out)
    args.work_dir = Path(args.work_dir) if args.work_dir else REPO / "runs" / "compare" / cfg.name
    doc = (
        None
        if (args.doc or "").lower() == "none"
        else Path(args.doc)
        if args.doc
        else (None if args.quick else DEFAULT_DOC)
    )
    out.mkdir(parents=True, exist_ok=True)
    runs = plan_runs(cfg, args.work_dir)
    if args.eval_policy:
        evaluate_all(cfg, runs, out, only={args.eval_policy})
        return out
    started = time.perf_counter()
    timings = {}

    steps = int(cfg.train.get("steps", 1))
    if args.report_only:
        evaluations = read_evaluations(out)
    else:
        evaluations = train_and_evaluate(cfg, runs, out, args, timings)
    copy_run_logs(runs, out)
    unfinished = {
        n: _completed_steps(r["dir"])
        for n, r in runs.items()
        if final_model_dir(r["dir"]) is None or _completed_steps(r["dir"]) < steps
    }
    missing_evals = [n for n in ["base", *runs] if n not in evaluations]
    t0 = time.perf_counter()
    sim_curves, sim_passk = simulate(cfg.methods, cfg.simulator, cfg.eval.ks)
    sim_curves.to_csv(out / "simulator_curves.csv", index=False)
    sim_passk.to_csv(out / "simulator_passk.csv", index=False)
    timings["simulator_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started

    summary = {
        "name": cfg.name,
        "quick": args.quick,
        "config": args.config,
        "command": "python -m llm.compare " + " ".join(sys.argv[1:] if argv is None else argv),
        "runs": {n: {k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for n, r in runs.items()},
        "unfinished_runs": {n: f"{done} of {steps} steps" for n, done in unfinished.items()},
        "missing_evaluations": missing_evals,
        "timings": timings,
        "finished_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    resolved = {
        "name": cfg.name,
        "train": cfg.train,
        "methods": cfg.methods,
        "seeds": cfg.seeds,
        "eval": cfg.eval.__dict__,
        "simulator": cfg.simulator,
        "task_note": cfg.task_note,
        **({"horizon": cfg.horizon} if cfg.horizon else {}),
    }
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    horizon = horizon_report(out, cfg.horizon, cfg.eval.bootstrap) if cfg.horizon else ""  # appended to the page
    compare_report.write_results(out, evaluations, cfg.eval.ks, cfg.eval.bootstrap, doc=doc, appendix=horizon)
    print(f"[compare] results in {out}" + (f", page {doc}" if doc else "") + f" ({timings['total_s'] / 60:.1f} min)")
    return out


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())
