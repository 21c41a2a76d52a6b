"""README.md's and docs/sandbox.md's claims tables are generated from summary.json and must agree with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import CLAIMS, SIMULATION_CLAIMS, run_all_claims
from sandbox.report import BEGIN, END, SUMMARY_PATH, claim_summary, claims_table, replace_section

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "sandbox.md"]


def _shipped() -> dict:
    return json.loads((ROOT / SUMMARY_PATH).read_text())


def _section(text: str) -> str:
    return text.split(BEGIN)[1].split(END)[0].lstrip("\n")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_tables_are_the_table_of_the_shipped_summary(path):
    assert _section(path.read_text()) == claims_table(_shipped()), (
        f"{path.name} disagrees with {SUMMARY_PATH}: run python -m sandbox report --write README.md docs/sandbox.md"
    )


def test_shipped_summary_has_every_claim_with_the_paper_framing():
    claims = _shipped()["claims"]
    assert list(claims) == list(CLAIMS)
    for name in SIMULATION_CLAIMS:
        entry = claims[name]
        assert entry["verdict"] in ("holds", "fails", "not resolved") and entry["seeds"] >= 8
        primary = [c for c in entry["comparisons"] if c["primary"]]
        assert primary and all(c["framing"] == "equal_steps" and c["ci_low"] <= c["ci_high"] for c in primary)
        assert entry["controls"] and all(c["verdict"] for c in entry["controls"])
    for name in ("entropy_riskpo_vs_grpo", "risk_seeking_collapse", "passk_large_k", "rs_bandit"):
        baselines = {c["baseline"] for c in claims[name]["comparisons"] if c["primary"]}
        assert "grpo" in baselines and ("dr_grpo" in baselines or "rs_grpo(beta=0)" in baselines), name
    for name in set(CLAIMS) - SIMULATION_CLAIMS:
        assert {"nontrivial", "trivial"} <= set(claims[name]), name


def test_a_failing_simulation_claim_says_the_simulator_contradicts_the_paper():
    summary = _shipped()
    table = claims_table(summary)
    for name, entry in summary["claims"].items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        if entry["kind"] == "simulation" and entry["verdict"] == "fails":
            assert "contradicts the paper" in row
        if entry["verdict"] == "holds":
            assert "contradicts" not in row and "**fails" not in row


def test_replace_section_needs_both_markers_once():
    text = f"a\n{BEGIN}\nold\n{END}\nb"
    assert replace_section(text, "new\n") == f"a\n{BEGIN}\nnew\n{END}\nb"
    with pytest.raises(ValueError, match="exactly one"):
        replace_section("no markers", "x")
    with pytest.raises(ValueError, match="exactly one"):
        replace_section(text + BEGIN, "x")


@pytest.mark.slow
def test_shipped_summary_is_what_the_claims_measure_now():
    # The full default run (~20 s CPU): verdicts and the generated table must match the shipped summary.
    fresh = {"claims": {name: claim_summary(r) for name, r in run_all_claims(progress=lambda f: None).items()}}
    shipped = _shipped()
    assert {n: e["verdict"] for n, e in fresh["claims"].items()} == {
        n: e["verdict"] for n, e in shipped["claims"].items()
    }
    assert claims_table(fresh) == claims_table(shipped)
