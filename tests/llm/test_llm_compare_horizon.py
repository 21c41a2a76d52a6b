"""llm.compare.horizon: the longer-horizon closing rule on hand-made short and long results folders.

Each folder is built from per-prompt counts of correct samples (``write_eval_folder``), so pass@1 of
a prompt is count / n and pass@n is count > 0. The verdicts are known by hand from the construction:
where every RiskPO seed is below every GRPO seed on every prompt, every bootstrap draw of the
difference is negative (interval below 0); where the two are equal on every prompt, every draw is 0
(interval [0, 0], which contains 0); where the per-prompt difference is +/-0.25 on alternate prompts,
a draw is > 0 or < 0 each with probability 93/256 (more plus than minus prompts drawn), far above
2.5 %, so the 2.5 % quantile is < 0 < the 97.5 % quantile. The intervals are
checked against ``hierarchical_difference`` called here on independently built (seeds, prompts)
matrices with the same resamples and bootstrap seed: the same draws, so they agree to float rounding
(1e-12).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compare_fixtures import write_eval_folder

from llm.compare.config import load_config
from llm.compare.heldout import hierarchical_difference
from llm.compare.horizon import (
    CLOSED,
    NOT_CLOSED,
    NOT_COMPARABLE,
    RULE,
    closing_verdict,
    compare_horizons,
    horizon_report,
    reward_curves,
)

REPO = Path(__file__).resolve().parents[2]
N = 4  # samples per prompt
E = 8  # held-out prompts
B = 400  # bootstrap resamples: the hand-known verdicts hold for any draw, see the module docstring

LOW = [0, 1, 0, 1, 0, 1, 0, 1]  # below HIGH on every prompt
HIGH = [2, 3, 2, 4, 3, 3, 2, 4]
MID = [2, 2, 2, 2, 2, 2, 2, 2]
ALTERNATE = [1, 3, 1, 3, 1, 3, 1, 3]  # minus MID: -0.25, +0.25, ... (pass@1)


def shifted(counts, step: int = 1) -> list[int]:
    """The same counts on rotated prompts: a second seed that differs per prompt but keeps the order."""
    return list(np.roll(counts, step))


def two_seeds(method: str, counts, other=None) -> dict:
    return {f"{method}-s0": counts, f"{method}-s1": other if other is not None else counts}


def gap_short_run(folder: Path) -> Path:
    """3-step-like run: RiskPO below GRPO and Dr. GRPO on seeds 0, 1; seed 2 (not shared with the long run)
    reverses the gap, so that using it would make the short interval contain 0 or lie above it."""
    counts = {
        **two_seeds("riskpo", LOW, shifted(LOW, 2)),
        **two_seeds("grpo", HIGH, shifted(HIGH, 2)),
        **two_seeds("dr_grpo", HIGH),
        "riskpo-s2": [N] * E,
        "grpo-s2": [0] * E,
        "dr_grpo-s2": [0] * E,
    }
    return write_eval_folder(folder, counts, N)


def pass1_rows(folder: Path, method: str, seeds) -> np.ndarray:
    """(seeds, prompts) pass@1 read back from the eval files: the share of correct samples."""
    rows = [np.asarray(json.loads((folder / "eval" / f"{method}-s{s}.json").read_text())["correct"]) for s in seeds]
    return np.stack([r.mean(axis=1) for r in rows])


def row(frame: pd.DataFrame, name: str, k: int) -> pd.Series:
    return frame[(frame["difference"] == name) & (frame["k"] == k)].iloc[0]


# ----------------------------------------------------------------------------- the rule


def test_gap_that_vanishes_is_closed_and_gap_that_stays_is_not(tmp_path):
    short = gap_short_run(tmp_path / "short")
    # long run: RiskPO's difference to GRPO alternates +/-0.25 over prompts (interval contains 0) while it
    # stays below Dr. GRPO on every prompt
    long = write_eval_folder(
        tmp_path / "long",
        {**two_seeds("riskpo", ALTERNATE), **two_seeds("grpo", MID), **two_seeds("dr_grpo", [N] * E)},
        N,
    )
    rows = compare_horizons(short, long, seeds=[0, 1], bootstrap=B, bootstrap_seed=3)
    assert rows["k"].tolist() == [1, N, 1, N]  # default k's: 1 and n
    d, d_dr = row(rows, "d", 1), row(rows, "d_dr", 1)
    assert d["verdict"] == CLOSED and d_dr["verdict"] == NOT_CLOSED
    assert d["short_ci_high"] < 0 and d["long_ci_low"] < 0 < d["long_ci_high"]
    assert d_dr["long_ci_high"] < 0
    assert (d["short_seeds_a"], d["short_seeds_b"], d["long_seeds_a"]) == (2, 2, 2)  # seed 2 left out
    # the intervals are hierarchical_difference's on the shared seeds only
    for name, b in (("d", "grpo"), ("d_dr", "dr_grpo")):
        for run, folder in (("short", short), ("long", long)):
            expected = hierarchical_difference(
                pass1_rows(folder, "riskpo", [0, 1]), pass1_rows(folder, b, [0, 1]), B, seed=3
            )
            got = row(rows, name, 1)[[f"{run}_estimate", f"{run}_ci_low", f"{run}_ci_high"]]
            assert tuple(got) == pytest.approx(expected, abs=1e-12), (name, run)
    # pass@n: a prompt passes iff it has a correct sample; reported with the same interval, not judged
    pass_n = row(rows, "d", N)
    expected = hierarchical_difference(
        (pass1_rows(short, "riskpo", [0, 1]) > 0).astype(float),
        (pass1_rows(short, "grpo", [0, 1]) > 0).astype(float),
        B,
        seed=3,
    )
    assert tuple(pass_n[["short_estimate", "short_ci_low", "short_ci_high"]]) == pytest.approx(expected, abs=1e-12)
    assert pass_n["verdict"].startswith("reported")


def test_short_interval_containing_or_above_zero_is_not_comparable(tmp_path):
    # short: d's per-prompt difference alternates +/-0.25 (interval contains 0); d_dr lies above 0
    short = write_eval_folder(
        tmp_path / "short",
        {**two_seeds("riskpo", ALTERNATE), **two_seeds("grpo", MID), **two_seeds("dr_grpo", [0] * E)},
        N,
    )
    # long: both gaps below 0, which would read "not closed" had the short run been below 0
    long = write_eval_folder(
        tmp_path / "long", {**two_seeds("riskpo", LOW), **two_seeds("grpo", HIGH), **two_seeds("dr_grpo", HIGH)}, N
    )
    rows = compare_horizons(short, long, seeds=[0, 1], bootstrap=B, bootstrap_seed=0)
    d, d_dr = row(rows, "d", 1), row(rows, "d_dr", 1)
    assert d["short_ci_low"] < 0 < d["short_ci_high"] and d_dr["short_ci_low"] > 0
    assert d["long_ci_high"] < 0 and d_dr["long_ci_high"] < 0
    assert d["verdict"] == NOT_COMPARABLE and d_dr["verdict"] == NOT_COMPARABLE


def test_long_run_above_zero_is_closed_and_the_verdict_function_boundaries():
    assert closing_verdict(short_high=-0.1, long_high=0.3) == CLOSED  # lies above 0
    assert closing_verdict(short_high=-0.1, long_high=0.0) == CLOSED  # [.., 0] contains 0
    assert closing_verdict(short_high=-0.1, long_high=-1e-9) == NOT_CLOSED
    assert closing_verdict(short_high=0.0, long_high=-0.5) == NOT_COMPARABLE  # short contained 0
    assert closing_verdict(short_high=0.2, long_high=-0.5) == NOT_COMPARABLE
    assert set(RULE) == {CLOSED, NOT_CLOSED, NOT_COMPARABLE}


def test_unevaluated_policies_and_mismatched_prompts(tmp_path):
    short = gap_short_run(tmp_path / "short")
    partial = write_eval_folder(tmp_path / "long", {**two_seeds("grpo", MID), "riskpo-s0": MID}, N)
    rows = compare_horizons(short, partial, seeds=[0, 1], bootstrap=B)
    assert row(rows, "d", 1)["verdict"] == "incomplete (not evaluated: long: riskpo-s1)"
    d_dr = row(rows, "d_dr", 1)
    assert d_dr["verdict"].startswith("incomplete") and "long: dr_grpo-s0, long: dr_grpo-s1" in d_dr["verdict"]
    assert np.isnan(d_dr["long_estimate"]) and not np.isnan(d_dr["short_estimate"])
    other = write_eval_folder(tmp_path / "other", two_seeds("riskpo", MID), N, prompt_ids=[f"q{i}" for i in range(E)])
    with pytest.raises(ValueError, match="different held-out prompts"):
        compare_horizons(short, other, seeds=[0, 1], bootstrap=B)
    with pytest.raises(ValueError, match="ks="):
        compare_horizons(short, short, seeds=[0, 1], ks=[2, 4], bootstrap=B)


def test_reward_curves_average_the_shared_seeds_only(tmp_path):
    def reward(method: str, seed: int, step: int) -> float:
        return {"grpo": 0.5, "riskpo": 0.2, "dr_grpo": 0.4}[method] + 0.1 * seed + 0.01 * step

    rewards = {f"{m}-s{s}": [reward(m, s, t) for t in (1, 2, 3)] for m in ("grpo", "riskpo") for s in (0, 1, 2)}
    counts = {policy: MID for policy in rewards}
    folder = write_eval_folder(tmp_path / "short", counts, N, rewards=rewards)
    frame, steps = reward_curves(folder, [0, 1], ["grpo", "riskpo"])
    assert steps == 3 and len(frame) == 6 and set(frame["seeds"]) == {2}
    for item in frame.itertuples():
        # mean over seeds 0 and 1 of the literal values (seed 2's +0.2 left out); float sums: 1e-12
        expected = np.mean([reward(item.method, s, item.step) for s in (0, 1)])
        assert item.reward_mean == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- files, page, config, CLI


def test_horizon_report_writes_files_and_quotes_the_rule(tmp_path):
    short = gap_short_run(tmp_path / "short")
    long = write_eval_folder(tmp_path / "long", {**two_seeds("riskpo", MID), **two_seeds("grpo", MID)}, N)
    section = horizon_report(long, {"short_run": str(short), "seeds": [0, 1]}, bootstrap=B)
    for word, text in RULE.items():
        assert f'"{word}": {text}' in section
    assert "d (riskpo − grpo): **closed**" in section and "d_dr (riskpo − dr_grpo): **incomplete" in section
    csv = pd.read_csv(long / "horizon.csv")
    payload = json.loads((long / "horizon.json").read_text())
    assert payload["rule"]["verdicts"] == RULE and payload["seeds"] == [0, 1]
    assert [r["verdict"] for r in payload["rows"]] == csv["verdict"].tolist()
    assert row(csv, "d", 1)["short_ci_high"] == pytest.approx(payload["rows"][0]["short_ci_high"], abs=1e-12)
    with pytest.raises(FileNotFoundError, match="horizon.short_run"):
        horizon_report(long, {"short_run": str(tmp_path / "nowhere"), "seeds": [0]}, bootstrap=B)


BASE = (
    "train: {model: tiny-random, steps: 1, prompts_per_step: 5, group_size: 4}\n"
    "methods: {grpo: {estimator: grpo}, riskpo: {estimator: riskpo}, dr_grpo: {estimator: dr_grpo}}\n"
    "seeds: [0, 1]\n"
    "eval: {num_prompts: 8, n: 4, ks: [1, 4], bootstrap: 200}\n"
    "simulator: {num_prompts: 5, responses_per_prompt: 4, group_size: 4, steps: 2, seeds: 1}\n"
)


@pytest.mark.parametrize(
    "block, field",
    [
        ("horizon: [docs]", "horizon="),
        ("horizon: {short_run: x, seeds: [0], steps: 3}", "unknown horizon key"),
        ("horizon: {seeds: [0]}", "horizon.short_run"),
        ("horizon: {short_run: '', seeds: [0]}", "horizon.short_run"),
        ("horizon: {short_run: 7}", "horizon.short_run"),
        ("horizon: {short_run: x, seeds: 0}", "horizon.seeds"),
        ("horizon: {short_run: x, seeds: [0, 0]}", "horizon.seeds"),
        ("horizon: {short_run: x, seeds: [true]}", "horizon.seeds"),
        ("horizon: {short_run: x, seeds: [0, 5]}", "among this run's seeds"),
    ],
)
def test_config_rejects_bad_horizon_blocks_naming_the_field(tmp_path, block, field):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + block + "\n")
    with pytest.raises(ValueError, match=field):
        load_config(path)


def test_config_horizon_defaults_and_quick(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "horizon: {short_run: some/folder}\nquick: {seeds: [0]}\n")
    assert load_config(path).horizon == {"short_run": "some/folder", "seeds": [0, 1]}  # default: the run's seeds
    assert load_config(path, quick=True).horizon == {}  # a quick run has no full-size short run to compare with
    long = load_config(REPO / "llm" / "configs" / "compare_long.yaml")
    assert long.horizon == {"short_run": "docs/compare/cpu-smollm2-seeds", "seeds": [0, 1]}
    assert (REPO / long.horizon["short_run"] / "eval").is_dir()
    assert load_config(REPO / "llm" / "configs" / "compare.yaml").horizon == {}


def test_report_only_appends_the_section_to_the_report_and_the_doc(tmp_path):
    from llm.compare.experiment import main

    short = gap_short_run(tmp_path / "short")
    counts = {"base": MID, **two_seeds("riskpo", MID), **two_seeds("grpo", MID), **two_seeds("dr_grpo", HIGH)}
    long = write_eval_folder(tmp_path / "long", counts, N, rewards={p: [0.1, 0.2] for p in counts if p != "base"})
    config = tmp_path / "long.yaml"
    config.write_text(BASE + f"horizon: {{short_run: {short}, seeds: [0, 1]}}\n")
    doc = tmp_path / "page.md"
    doc.write_text("# intro\n")
    work = tmp_path / "work"
    main(["--config", str(config), "--report-only", "--out", str(long), "--work-dir", str(work), "--doc", str(doc)])
    report, page = (long / "report.md").read_text(), doc.read_text()
    # long: RiskPO = GRPO on every prompt (interval [0, 0], contains 0), below Dr. GRPO on every prompt
    assert "### Longer horizon" in report and report.rstrip().endswith("|")  # the section ends the page
    section = page.partition("### Longer horizon")[2]
    assert "<!-- compare:" in page.partition("### Longer horizon")[0] and section.rstrip().endswith(":end -->")
    assert "d (riskpo − grpo): **closed**" in section and "d_dr (riskpo − dr_grpo): **not closed**" in section
    assert (long / "horizon.csv").is_file() and (long / "horizon.json").is_file()
    assert json.loads((long / "summary.json").read_text())["missing_evaluations"] == []
