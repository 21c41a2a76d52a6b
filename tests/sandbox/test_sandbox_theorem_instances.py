"""Non-trivial instances of RiskPO Theorems 2 and 3: the ``tail_mass`` construction, checked by hand.

The construction must give laws that meet Assumption 1 *as printed* with probability mass strictly
below q_α and strictly above q_β (otherwise the Theorem 2 gap and the Theorem 3 difference are exactly
0 and the inequality is not tested). The by-hand check below uses plain Python floats and its own
quantile scan, not ``theory.assumptions``. Each mutation test breaks one thing and shows the check red.
"""

from __future__ import annotations

import math

import pytest
import torch

from sandbox import claims as C
from sandbox.claims import riskpo_covariance as RC
from theory import assumptions

ALPHA, BETA, OMEGA = 0.2, 0.8, 0.5


def literal_assumption_by_hand(rewards, probs, alpha, beta, flip_lower=False):
    """Assumption 1 clause by clause on one law with distinct rewards (ψ(r_a) = log π_a), plus tail masses.

    ``flip_lower`` mutates the lower clause to "non-decreasing" (the inequality flipped)."""
    pairs = sorted(zip(rewards, probs))
    assert len({r for r, _ in pairs}) == len(pairs), "tail_mass rewards must be distinct"
    cum, q_alpha, q_beta = 0.0, None, None
    for r, p in pairs:
        cum += p
        if q_alpha is None and cum >= alpha - 1e-12:  # F⁻¹(α) = inf{r: F(r) >= α}
            q_alpha = r
        if q_beta is None and cum >= beta - 1e-12:
            q_beta = r
    mean_log = sum(p * math.log(p) for _, p in pairs)
    psi = {r: math.log(p) for r, p in pairs}
    low = [psi[r] for r, _ in pairs if r <= q_alpha]
    up = [psi[r] for r, _ in pairs if r >= q_beta]
    if flip_lower:
        lower_ok = all(x <= y for x, y in zip(low, low[1:]))
    else:
        lower_ok = all(x >= y for x, y in zip(low, low[1:]))
    upper_ok = all(x <= y for x, y in zip(up, up[1:]))
    levels = psi[q_alpha] >= mean_log and psi[q_beta] >= mean_log
    below = sum(p for r, p in pairs if r < q_alpha)
    above = sum(p for r, p in pairs if r > q_beta)
    return lower_ok and upper_ok and levels, below, above, q_alpha, q_beta


def test_tail_mass_instances_meet_the_literal_assumption_with_mass_on_both_tails():
    g = torch.Generator().manual_seed(11)
    rewards, logits = RC.tail_mass_instances(g, 300, 10, ALPHA, BETA)
    probs = torch.softmax(logits, -1)
    assert torch.allclose(probs.log(), logits, atol=1e-12)  # logits are log π already (they sum to 1)
    report = assumptions.assumption_1_report(rewards, logits, probs, ALPHA, BETA)
    below_t, above_t = assumptions.tail_masses(rewards, probs, report["q_alpha"], report["q_beta"])
    for i in range(rewards.shape[0]):
        ok, below, above, qa, qb = literal_assumption_by_hand(rewards[i].tolist(), probs[i].tolist(), ALPHA, BETA)
        assert ok and below > 0 and above > 0
        assert qa == float(report["q_alpha"][i]) and qb == float(report["q_beta"][i])
        # the vectorised tail masses are the same float64 sums in another order: 1e-12 is round-off
        assert below == pytest.approx(float(below_t[i]), abs=1e-12) and above == pytest.approx(
            float(above_t[i]), abs=1e-12
        )
    assert bool(report["holds"].all())


def test_flipped_lower_clause_rejects_the_construction():
    """Mutation: with the lower-tail inequality flipped the by-hand check goes red on the constructed laws
    (their lower-tail probabilities are strictly decreasing in r), so it can tell the clause's direction."""
    g = torch.Generator().manual_seed(11)
    rewards, logits = RC.tail_mass_instances(g, 50, 10, ALPHA, BETA)
    probs = torch.softmax(logits, -1)
    flipped = [
        literal_assumption_by_hand(rewards[i].tolist(), probs[i].tolist(), ALPHA, BETA, flip_lower=True)[0]
        for i in range(50)
    ]
    assert not any(flipped)


def test_tail_masses_on_a_known_law():
    rewards = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    probs = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
    # F = (0.1, 0.3, 0.7, 0.9, 1): q_0.2 = 0.25 (mass 0.1 below), q_0.8 = 0.75 (mass 0.1 above).
    below, above = assumptions.tail_masses(rewards, probs, torch.tensor(0.25), torch.tensor(0.75))
    assert float(below) == pytest.approx(0.1, abs=1e-15) and float(above) == pytest.approx(0.1, abs=1e-15)


def thm2_failures(res) -> list[str]:
    """What the Thm 2 claim must show at test size; an empty list is green."""
    out = []
    if res["nontrivial"] < 250:  # 300 tail_mass instances; ~all are non-trivial (measured 300/300 at seed 0)
        out.append(f"only {res['nontrivial']} non-trivial instances")
    if res["nontrivial_holds"] != res["nontrivial"]:
        out.append("a non-trivial instance violates Cov_MVaR <= Cov_mean")
    if res["trivial"] + res["nontrivial"] != res["assumption_counts"]["literal"]:
        out.append("trivial + non-trivial != literal")
    if not res["holds"]:
        out.append("verdict not holds")
    return out


def thm3_failures(res) -> list[str]:
    out = []
    if res["nontrivial_instances"] < 250:
        out.append(f"only {res['nontrivial_instances']} non-trivial instances")
    if res["nontrivial_erratum"] != res["nontrivial"]:
        out.append("a non-trivial case where the printed form does not fail strictly")
    if res["corrected_holds"] != res["cases"]:
        out.append("corrected form fails")
    if res["trivial"] + res["nontrivial"] != res["cases"]:
        out.append("trivial + non-trivial != cases")
    return out


def test_thm2_non_trivial_instances_obey_the_inequality_strictly():
    res = C.claim_thm2_covariance(seeds=300)
    assert thm2_failures(res) == []
    tail = [
        row for row in res["table"] if row["instances"] == "tail_mass" and row["assumption_1"] == "assumption holds"
    ]
    assert tail[0]["mass_below_q_alpha_and_above_q_beta"] == 300 and tail[0]["min_gap"] > 1e-12


def test_thm3_erratum_on_non_trivial_instances():
    res = C.claim_thm3_tail_transforms(seeds=300)
    assert thm3_failures(res) == []
    assert res["nontrivial_erratum"] >= 3 * 300  # every pair on every tail_mass law fails as printed


def test_thm2_check_goes_red_when_the_inequality_is_flipped(monkeypatch):
    """Mutation: swap A_MVaR and A_mean (Cov_mean <= Cov_MVaR is then what is checked)."""
    mvar, mean = RC.pop.population_mvar, RC.pop.population_dr_grpo
    monkeypatch.setattr(RC.pop, "population_mvar", lambda r, p, *a, **k: mean(r, p))
    monkeypatch.setattr(RC.pop, "population_dr_grpo", lambda r, p: mvar(r, p, ALPHA, BETA, OMEGA))
    assert thm2_failures(C.claim_thm2_covariance(seeds=300)) != []


def test_thm3_check_goes_red_when_the_upper_tail_clause_is_flipped(monkeypatch):
    """Mutation: Assumption 1 with ψ non-increasing on the upper tail; the constructed laws no longer qualify."""
    original = RC.assumption_1_report

    def flipped(rewards, log_probs, probs, alpha, beta):
        report = original(rewards, log_probs, probs, alpha, beta)
        mirrored = original(rewards, -log_probs, probs, alpha, beta)  # ψ → −ψ flips both monotone clauses
        report["holds"] = report["lower_monotone"] & mirrored["upper_monotone"] & report["lower_level"]
        report["holds"] &= report["upper_level"]
        return report

    monkeypatch.setattr(RC, "assumption_1_report", flipped)
    assert thm3_failures(C.claim_thm3_tail_transforms(seeds=300)) != []
