"""Every simulation claim's test, and the mutations that must turn it red (issue 16, item 7).

MUTATIONS (tests/claim_checks.py, one monkeypatch each; the claims each must turn red):

    predicate flipped                                  every simulation claim
    MVaR replaced by the bundle-mean objective         the RiskPO claims (entropy, risk seeking, bundling,
                                                       pass@k, bundle size)
    advantage negated                                  the RiskPO claims and the RS-GRPO bandit
    RS-GRPO β ignored in compute                       passk_large_k, rs_bandit
    RS-GRPO β ignored in population                    rs_lemma3, rs_lemma4
    RiskPO's half of the pass@k claim made impossible  passk_large_k

The default tier runs every claim unmutated (its test must pass) and a cheap subset of mutations;
the slow tier runs every (mutation, claim) pair.
"""

from __future__ import annotations

import pytest
from claim_checks import MUTATIONS, SIMULATION, run_and_check

PAIRS = [(m, c) for m in MUTATIONS for c in m.claims]
CHEAP = {("predicate flipped", "bundling_nonzero_gradient"), ("advantage negated", "bundling_nonzero_gradient")}
CHEAP |= {("RS-GRPO β ignored in population", "rs_lemma3")}


def _id(pair) -> str:
    return f"{pair[0].name} -> {pair[1]}"


@pytest.mark.parametrize("name", ["bundling_nonzero_gradient"])
def test_claim_passes_its_test_unmutated_fast(name):
    run_and_check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SIMULATION if n != "bundling_nonzero_gradient"])
def test_claim_passes_its_test_unmutated(name):
    run_and_check(name)


def _red(mutation, claim, monkeypatch):
    with monkeypatch.context() as mp:
        mutation.apply(mp)
        with pytest.raises(AssertionError):
            run_and_check(claim)


@pytest.mark.parametrize("pair", [p for p in PAIRS if (p[0].name, p[1]) in CHEAP], ids=_id)
def test_mutation_turns_the_claim_red_fast(pair, monkeypatch):
    _red(*pair, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("pair", [p for p in PAIRS if (p[0].name, p[1]) not in CHEAP], ids=_id)
def test_mutation_turns_the_claim_red(pair, monkeypatch):
    _red(*pair, monkeypatch)


def test_every_listed_mutation_targets_a_claim():
    assert len(MUTATIONS) == 6 and all(m.claims for m in MUTATIONS)
