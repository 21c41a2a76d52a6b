"""llm.compare: config, statistics, loader, simulator prediction, report, and the --quick run end to end.

Expected numbers are computed independently here: pass@k by brute-force
enumeration of k-subsets (itertools), bootstrap intervals against the
normal approximation, curves against the fixture file's literal values.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compare_fixtures import FIXTURE_RUN, synthetic_correct, synthetic_results

from llm.compare.config import load_config
from llm.compare.heldout import (
    bootstrap_indices,
    bootstrap_mean,
    hierarchical_difference,
    paired_difference,
    passk_per_prompt,
    passk_table,
)
from llm.compare.report import write_results
from llm.compare.results import load_folder, read_metrics, simulate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "llm" / "configs" / "compare.yaml"


def brute_force_passk(row: np.ndarray, k: int) -> float:
    """Fraction of the k-subsets of the n samples that contain a correct one."""
    subsets = list(itertools.combinations(range(len(row)), k))
    return sum(any(row[list(s)]) for s in subsets) / len(subsets)


# ----------------------------------------------------------------------------- config


def test_config_quick_merges_over_the_real_setting():
    real, quick = load_config(CONFIG), load_config(CONFIG, quick=True)
    assert set(real.methods) == {"grpo", "dr_grpo", "riskpo", "rs_grpo"}
    assert real.methods["riskpo"]["estimator_params"] == {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5}
    assert real.methods["rs_grpo"]["estimator_params"] == {"beta": 2.0}
    assert real.eval.n >= 16 and real.eval.ks[-1] == real.eval.n
    assert quick.train["model"] == "tiny-random" and quick.train["steps"] == 2
    # keys the quick section does not name keep the real values
    assert quick.train["lr"] == real.train["lr"] and quick.methods == real.methods
    # every method's run differs only in the estimator keys, seed and output dir
    a, b = real.train_values("grpo", 0, Path("x")), real.train_values("riskpo", 0, Path("x"))
    assert {k for k in a if a[k] != b.get(k)} == {"estimator", "estimator_params"}


def test_config_errors_name_the_field(tmp_path):
    def write(text: str) -> Path:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        return path

    base = "train: {model: tiny-random, steps: 1, prompts_per_step: 5}\nmethods: {grpo: {estimator: grpo}}\n"
    with pytest.raises(ValueError, match="eval.ks"):
        load_config(write(base + "eval: {n: 4, ks: [1, 8]}\n"))
    with pytest.raises(ValueError, match="unknown key"):
        load_config(write(base + "evaluation: {}\n"))
    with pytest.raises(ValueError, match="group_size"):
        load_config(write("train: {group_size: 1}\nmethods: {grpo: {estimator: grpo}}\n"))
    with pytest.raises(ValueError, match="methods.grpo"):
        load_config(write("train: {steps: 1}\nmethods: {grpo: {lr: 1.0}}\n"))


# ----------------------------------------------------------------------------- statistics


def test_passk_matches_subset_enumeration_and_is_monotone():
    rng = np.random.default_rng(0)
    correct = synthetic_correct(rng, 6, 8)
    ks = [1, 2, 3, 4, 8]
    got = passk_per_prompt(correct, ks)
    expected = np.array([[brute_force_passk(row, k) for k in ks] for row in correct])
    np.testing.assert_allclose(got, expected, atol=1e-12)  # exact rationals up to float64 rounding
    rows = passk_table(correct, ks, bootstrap_indices(len(correct), 500, seed=1))
    values = [r["pass_at_k"] for r in rows]
    assert values == sorted(values) and values[0] == pytest.approx(correct.mean(), abs=1e-12)
    assert all(r["ci_low"] <= r["pass_at_k"] <= r["ci_high"] for r in rows)


def test_bootstrap_interval_matches_normal_approximation():
    # Mean of 400 values: the percentile interval should be ±1.96 σ/√E. With 4000 resamples the
    # Monte Carlo error of a 2.5 % quantile is ~3 % of the half width; 10 % leaves room for skew.
    rng = np.random.default_rng(3)
    values = rng.exponential(size=400)
    mean, low, high = bootstrap_mean(values, bootstrap_indices(400, 4000, seed=5))
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert mean == pytest.approx(values.mean(), abs=1e-12)
    assert (high - low) / 2 == pytest.approx(half, rel=0.10)
    # paired: a constant shift has a degenerate interval at the shift
    assert paired_difference(values + 0.25, values, bootstrap_indices(400, 100, seed=6)) == pytest.approx(
        (0.25, 0.25, 0.25)
    )


def test_hierarchical_interval_covers_seed_variation_and_prompt_variation():
    rng = np.random.default_rng(11)
    # (1) Prompt-constant rows: only the seeds vary. The interval of mean(a) - mean(b) must match the
    # normal approximation 1.96 * sqrt(var_a / Sa + var_b / Sb) of two independent means (ddof = 0, the
    # bootstrap's own variance); 4000 resamples put ~3 % Monte Carlo error on the half width, 10 % allows skew.
    # a's seeds vary far more than b's, so leaving either method's seeds unresampled shows (the
    # check runs both ways round).
    seeds_a, seeds_b = rng.normal(0.3, 0.3, size=300), rng.normal(0.1, 0.05, size=200)
    a, b = np.repeat(seeds_a[:, None], 5, axis=1), np.repeat(seeds_b[:, None], 5, axis=1)
    half = 1.96 * math.sqrt(seeds_a.var() / len(seeds_a) + seeds_b.var() / len(seeds_b))
    for first, second, sign in ((a, b, 1.0), (b, a, -1.0)):
        estimate, low, high = hierarchical_difference(first, second, 4000, seed=1)
        assert estimate == pytest.approx(sign * (seeds_a.mean() - seeds_b.mean()), abs=1e-12)
        assert (high - low) / 2 == pytest.approx(half, rel=0.10)
    # (2) Seed-constant rows: only the prompts vary, paired between the methods: the same width as the
    # prompts-only paired interval (same normal approximation, same tolerance).
    prompts = rng.exponential(size=400)
    a, b = np.tile(prompts + 0.5 * rng.random(400), (3, 1)), np.tile(prompts, (2, 1))
    estimate, low, high = hierarchical_difference(a, b, 4000, seed=2)
    diff = a[0] - b[0]
    assert estimate == pytest.approx(diff.mean(), abs=1e-12)
    assert (high - low) / 2 == pytest.approx(1.96 * diff.std(ddof=1) / math.sqrt(400), rel=0.10)
    # (3) Both vary: wider than either source alone.
    noisy = a + rng.normal(0, 0.3, size=(3, 1))
    _, low3, high3 = hierarchical_difference(noisy, b, 4000, seed=2)
    assert high3 - low3 > high - low
    with pytest.raises(ValueError, match="same prompts"):
        hierarchical_difference(a, b[:, :10], 10, seed=0)


def test_claims_use_every_seed_and_the_hierarchical_interval(tmp_path):
    from llm.compare.report import claims

    rng = np.random.default_rng(4)
    evaluations = {
        "base": {"method": "base", "seed": None, "correct": synthetic_correct(rng, 10, 8), "entropy": rng.random(10)}
    }
    for method in ("grpo", "riskpo"):
        for seed in (0, 1, 2):
            evaluations[f"{method}-s{seed}"] = {
                "method": method,
                "seed": seed,
                "correct": synthetic_correct(rng, 10, 8),
                "entropy": rng.random(10),
            }
    rows = claims(evaluations, [1, 8], bootstrap_indices(10, 500, seed=0), None, None).set_index("claim")
    row = rows.loc["RiskPO does not lose pass@1 to GRPO (paper: it gains)"]
    a = np.stack([np.asarray(evaluations[f"riskpo-s{s}"]["correct"]).mean(1) for s in (0, 1, 2)])
    b = np.stack([np.asarray(evaluations[f"grpo-s{s}"]["correct"]).mean(1) for s in (0, 1, 2)])
    expected = hierarchical_difference(a, b, 500, seed=0)  # pass@1 per prompt = share of correct samples
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx(expected, abs=1e-12)
    assert row["seeds_a"] == 3 and row["seeds_b"] == 3
    prompts_only = paired_difference(a.mean(0), b.mean(0), bootstrap_indices(10, 500, seed=0))
    assert (row["prompt_ci_low"], row["prompt_ci_high"]) == pytest.approx(prompts_only[1:], abs=1e-12)
    assert "RiskPO does not lose pass@1 to Dr. GRPO (paper: it gains)" not in rows.index  # dr_grpo not evaluated


def test_compare_config_declares_four_methods_three_seeds_and_the_paper_loss():
    cfg = load_config(CONFIG)
    assert set(cfg.methods) == {"grpo", "dr_grpo", "riskpo", "rs_grpo"}
    assert cfg.methods["dr_grpo"]["estimator"] == "dr_grpo" and len(cfg.seeds) >= 3
    # RiskPO v2 eq. (3): sequence ratio, per-response mean, symmetric eps = 0.2 (shared by every method)
    assert cfg.train["importance_ratio"] == "sequence" and cfg.train["loss_agg"] == "seq-mean-token-mean"
    assert cfg.train["clip_eps_low"] == cfg.train["clip_eps_high"] == 0.2
    text = CONFIG.read_text()
    assert "READING RULE" in text and "HIERARCHICAL" in text and "SIZING" in text
    long = load_config(REPO / "llm" / "configs" / "compare_long.yaml")
    assert set(long.methods) == {"grpo", "dr_grpo", "riskpo"} and len(long.seeds) >= 2
    assert long.train["steps"] >= 4 * cfg.train["steps"]
    # the longer run differs from the main one in its steps only
    assert {k: v for k, v in long.train.items() if k != "steps"} == {k: v for k, v in cfg.train.items() if k != "steps"}
    assert long.eval == cfg.eval and "CLOSING" in (REPO / "llm" / "configs" / "compare_long.yaml").read_text()


# ----------------------------------------------------------------------------- loader


def test_loader_reads_a_fixture_run_tolerantly():
    loaded = load_folder(FIXTURE_RUN)
    assert loaded.kind == "run"
    assert loaded.skipped_lines == 1  # the truncated last line; the blank line is not an error
    curves = loaded.curves
    assert curves["step"].tolist() == [1, 2]
    assert curves["reward_mean"].tolist() == [0.25, 0.35]
    assert curves["entropy"].tolist() == [1.5, 1.25]
    assert set(curves["method"]) == {"riskpo"} and set(curves["seed"]) == {3}
    assert "note" not in curves.columns  # non-numeric values are not curves
    assert "cov_logp_adv" in loaded.missing_metrics and "entropy" not in loaded.missing_metrics
    parent = load_folder(FIXTURE_RUN.parent)  # a folder of runs
    assert parent.kind == "runs" and parent.curves["reward_mean"].tolist() == [0.25, 0.35]
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        load_folder(REPO / "docs")


def test_read_metrics_keeps_the_last_copy_of_a_repeated_step(tmp_path):
    # a resumed run may log a step twice; the later line is the one that continued
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "entropy": 2.0}\n{"step": 2, "entropy": 1.0}\n{"step": 2, "entropy": 1.5}\n')
    frame, skipped = read_metrics(path)
    assert skipped == 0 and frame["entropy"].tolist() == [2.0, 1.5]


# ----------------------------------------------------------------------------- simulator


def test_simulator_prediction_is_consistent_with_its_own_curves():
    methods = {"grpo": {"estimator": "grpo"}, "rs_grpo": {"estimator": "rs_grpo", "estimator_params": {"beta": 2.0}}}
    curves, passk = simulate(
        methods, {"num_prompts": 10, "responses_per_prompt": 8, "group_size": 4, "steps": 4, "seeds": 2}, [1, 2, 4]
    )
    assert set(curves["method"]) == {"grpo", "rs_grpo"} and curves["step"].max() == 4
    for method in ("grpo", "rs_grpo", "base"):
        values = passk[passk["method"] == method].sort_values("k")["pass_at_k"].tolist()
        assert len(values) == 3 and values == sorted(values)
    # pass@1 is the policy's success probability: the pass_at_1 column of the last (and first) step
    last = curves[curves["step"] == 4].set_index("method")["pass_at_1"]
    first = curves[curves["step"] == 0]["pass_at_1"]
    at1 = passk[passk["k"] == 1].set_index("method")["pass_at_k"]
    assert at1["grpo"] == pytest.approx(last["grpo"], abs=1e-12)
    assert at1["base"] == pytest.approx(first.iloc[0], abs=1e-12) and first.nunique() == 1


# ----------------------------------------------------------------------------- report on synthetic evaluations


def test_report_files_and_pass_at_k_table(tmp_path):
    evaluations = synthetic_results(tmp_path)
    doc = tmp_path / "page.md"
    doc.write_text("# intro kept\n")
    write_results(tmp_path, evaluations, [1, 2, 4, 8], bootstrap=300, doc=doc)
    for name in ("curves.csv", "passk.csv", "heldout.csv", "claims.csv", "curves.png", "passk.png", "report.md"):
        assert (tmp_path / name).is_file(), name
    passk = pd.read_csv(tmp_path / "passk.csv")
    for policy, group in passk.groupby("policy"):
        correct = np.array(evaluations[policy]["correct"])
        expected = [np.mean([brute_force_passk(row, k) for row in correct]) for k in (1, 2, 4, 8)]
        np.testing.assert_allclose(group.sort_values("k")["pass_at_k"], expected, atol=1e-12)
    claims = pd.read_csv(tmp_path / "claims.csv")
    row = claims[claims["quantity"] == "pass@8"].iloc[0]
    a = passk_per_prompt(np.array(evaluations["riskpo-s0"]["correct"]), [8])[:, 0]
    b = passk_per_prompt(np.array(evaluations["grpo-s0"]["correct"]), [8])[:, 0]
    assert row["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert row["verdict"] == (
        "supported"
        if row["ci_low"] > 0
        else "contradicted"
        if row["ci_high"] < 0
        else "not resolved (interval contains 0)"
    )
    text = doc.read_text()
    assert text.startswith("# intro kept") and "pass@8" in text
    write_results(tmp_path, evaluations, [1, 2, 4, 8], bootstrap=300, doc=doc)  # rerun replaces its section
    assert doc.read_text().count("<!-- compare:") == 2


def test_report_without_runs_keeps_the_shipped_curves(tmp_path):
    """A shipped folder has curves.csv but not runs/ (git-ignored before): re-reporting keeps the curves."""
    import shutil

    evaluations = synthetic_results(tmp_path)
    write_results(tmp_path, evaluations, [1, 2, 4, 8], bootstrap=50)
    shipped = (tmp_path / "curves.csv").read_text()
    shutil.rmtree(tmp_path / "runs")
    write_results(tmp_path, evaluations, [1, 2, 4, 8], bootstrap=50)
    assert (tmp_path / "curves.csv").read_text() == shipped and len(pd.read_csv(tmp_path / "curves.csv")) == 9


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_quick_comparison_end_to_end(tmp_path):
    from llm.compare.experiment import main

    out, work, doc = tmp_path / "results", tmp_path / "work", tmp_path / "doc.md"
    main(["--quick", "--out", str(out), "--work-dir", str(work), "--doc", str(doc)])
    for name in (
        "config.yaml",
        "summary.json",
        "curves.csv",
        "passk.csv",
        "heldout.csv",
        "claims.csv",
        "simulator_curves.csv",
        "simulator_passk.csv",
        "curves.png",
        "passk.png",
        "report.md",
    ):
        assert (out / name).is_file(), name
    policies = {"base", "grpo-s0", "riskpo-s0", "dr_grpo-s0", "rs_grpo-s0"}  # every method of compare.yaml
    assert {p.stem for p in (out / "eval").glob("*.json")} == policies
    assert not list(out.rglob("*.safetensors")) and not list(out.rglob("checkpoints"))  # no weights in results
    curves = pd.read_csv(out / "curves.csv")
    assert curves.groupby("method")["step"].max().to_dict() == {"grpo": 2, "riskpo": 2, "dr_grpo": 2, "rs_grpo": 2}
    passk = pd.read_csv(out / "passk.csv")
    assert set(passk["policy"]) == policies
    for policy, group in passk.groupby("policy"):
        values = group.sort_values("k")["pass_at_k"].tolist()
        assert values == sorted(values), policy  # pass@k is monotone in k
        correct = np.array(json.loads((out / "eval" / f"{policy}.json").read_text())["correct"])
        assert correct.shape == (4, 4)
        expected = [np.mean([brute_force_passk(row, k) for row in correct]) for k in (1, 2, 4)]
        np.testing.assert_allclose(values, expected, atol=1e-12)
    assert "quick-tiny" in doc.read_text()


def test_heldout_prompts_exclude_every_training_question():
    from llm.compare.heldout import heldout_examples
    from llm.data import load_dataset_examples

    spec = "reasoning_gym:basic_arithmetic?max_terms=2&max_digits=1&size=300"
    training = {e.question for e in load_dataset_examples(spec, seed=0)}
    pool = [e.question for e in load_dataset_examples(spec, seed=1000)]
    assert training & set(pool)  # the generator does repeat questions across seeds: removal is needed
    held = heldout_examples(spec, 20, 1000, training)
    questions = [e.question for e in held]
    assert len(set(questions)) == 20 and not set(questions) & training
    # first 20 qualifying questions of the seed-1000 pool, in pool order
    assert questions == [q for q in dict.fromkeys(pool) if q not in training][:20]
    with pytest.raises(ValueError, match="eval.num_prompts=1000"):
        heldout_examples(spec, 1000, 1000, training)


def test_report_only_lists_unfinished_runs_and_missing_evaluations(tmp_path):
    from llm.compare.experiment import main

    out, work = tmp_path / "results", tmp_path / "work"
    evaluations = synthetic_results(tmp_path / "made")
    (out / "eval").mkdir(parents=True)
    for name in ("base", "grpo-s0"):  # riskpo and rs_grpo were never evaluated
        (out / "eval" / f"{name}.json").write_text(json.dumps(evaluations[name]))
    for method in ("grpo", "riskpo"):  # logged steps, but no final checkpoint: unfinished
        run = work / "runs" / f"{method}-s0"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "reward_mean": 0.5, "entropy": 1.0}) + "\n")
    main(["--quick", "--report-only", "--out", str(out), "--work-dir", str(work), "--doc", "none"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unfinished_runs"] == {
        "grpo-s0": "1 of 2 steps",
        "dr_grpo-s0": "0 of 2 steps",
        "riskpo-s0": "1 of 2 steps",
        "rs_grpo-s0": "0 of 2 steps",
    }
    assert summary["missing_evaluations"] == ["riskpo-s0", "dr_grpo-s0", "rs_grpo-s0"]  # config order
    assert set(pd.read_csv(out / "passk.csv")["policy"]) == {"base", "grpo-s0"}
    assert pd.read_csv(out / "claims.csv")["claim"].tolist() == ["GRPO training changed pass@1"]
    report = (out / "report.md").read_text()
    assert "Incomplete run" in report and "`rs_grpo-s0` (0 of 2 steps)" in report
