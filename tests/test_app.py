"""Drive every view of app.py headlessly with Streamlit's AppTest and check the numbers it shows.

Expected values are computed here independently: closed forms for the
binary-reward advantages, brute-force enumeration for the bundle-score law,
and a hand-written NumPy loop of the exact softmax policy-gradient update for
the bandit.
"""
from __future__ import annotations

import base64
import itertools
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(REPO / "app.py")
# Generous: a cold AppTest run imports torch/plotly and runs the default view.
TIMEOUT = 120


def start(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, index: int = 0):
    return at.dataframe[index].value


def row(frame, estimator_prefix: str):
    match = frame[frame["estimator"].str.startswith(estimator_prefix)]
    assert len(match) == 1, f"{estimator_prefix!r} rows: {list(frame['estimator'])}"
    return match.iloc[0]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _decode_typed_arrays(node):
    """Plotly JSON ships numeric arrays as {"dtype", "bdata": base64}; turn them back into lists."""
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            values = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            return values.reshape(node["shape"]).tolist() if "shape" in node else values.tolist()
        return {key: _decode_typed_arrays(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_decode_typed_arrays(value) for value in node]
    return node


def plotly_figures(at: AppTest) -> list[dict]:
    """The figures exactly as sent to the browser (plotly JSON)."""
    return [_decode_typed_arrays(json.loads(e.proto.spec)) for e in at.get("plotly_chart")]


# --------------------------------------------------------------------------- closed forms (independent of theory/)


def rs_grpo_binary(beta: float, c: int, g: int) -> tuple[float, float]:
    """(1/β)(e^{βr}/mean e^{βr} − 1) for r in {1, 0} with c of G correct."""
    mean_exp = (c * math.exp(beta) + (g - c)) / g
    return (math.exp(beta) / mean_exp - 1) / beta, (1 / mean_exp - 1) / beta


def grpo_binary(c: int, g: int, eps: float = 1e-6) -> tuple[float, float]:
    p = c / g
    std = math.sqrt(p * (1 - p) * g / (g - 1))  # Bessel-corrected, as GRPO defaults
    return (1 - p) / (std + eps), (0 - p) / (std + eps)


def chen_passk_binary(c: int, g: int, k: int) -> tuple[float, float]:
    mean_pass = 1 - math.comb(g - c, k) / math.comb(g, k)
    sigma = math.sqrt(mean_pass * (1 - mean_pass))
    negative = 1 - mean_pass - math.comb(g - c - 1, k - 1) / math.comb(g - 1, k - 1)
    return (1 - mean_pass) / sigma, negative / sigma


# --------------------------------------------------------------------------- view 1


def test_shapes_default_view_matches_closed_forms():
    at = start()
    shown = table(at)
    # Defaults: G = 16, c = 1, RS-GRPO β = 2, pass@k k = 4.
    a_pos, a_neg = rs_grpo_binary(2.0, 1, 16)
    assert a_pos == pytest.approx(2.140, abs=5e-4)  # the figure quoted in the RS-GRPO paper, 3 decimals
    rs = row(shown, "rs_grpo")
    # float64 end to end; 1e-9 only absorbs summation order.
    assert rs["adv_correct"] == pytest.approx(a_pos, abs=1e-9)
    assert rs["adv_incorrect"] == pytest.approx(a_neg, abs=1e-9)
    assert rs["sum_abs_adv"] == pytest.approx(abs(a_pos) + 15 * abs(a_neg), abs=1e-9)
    g_pos, g_neg = grpo_binary(1, 16)
    assert row(shown, "grpo")["adv_correct"] == pytest.approx(g_pos, abs=1e-9)
    assert row(shown, "grpo")["adv_incorrect"] == pytest.approx(g_neg, abs=1e-9)
    assert row(shown, "dr_grpo")["adv_correct"] == pytest.approx(15 / 16, abs=1e-12)
    c_pos, c_neg = chen_passk_binary(1, 16, 4)
    assert row(shown, "passk_chen")["adv_correct"] == pytest.approx(c_pos, abs=1e-9)
    assert row(shown, "passk_chen")["adv_incorrect"] == pytest.approx(c_neg, abs=1e-9)
    # Single-question RiskPO with 1 of 16 correct: both group quantiles are 0, so no signal at all.
    assert row(shown, "riskpo (")["sum_abs_adv"] == 0.0
    assert not errors(at)
    # The figure carries the same numbers: the RS-GRPO A⁺ trace at p̂ = 1/16.
    fig = plotly_figures(at)[0]
    trace = next(t for t in fig["data"] if t["name"].startswith("rs_grpo") and t["xaxis"] == "x")
    assert trace["y"][1] == pytest.approx(a_pos, abs=1e-9)


def test_shapes_follow_sliders():
    at = start()
    at.slider(key="group_size").set_value(8).run()
    at.slider(key="num_correct").set_value(3).run()
    at.select_slider(key="rs_beta").set_value(4.0).run()
    at.multiselect(key="rs_betas_extra").set_value([0.5]).run()
    at.slider(key="k").set_value(3).run()
    assert not at.exception
    shown = table(at)
    for beta in (4.0, 0.5):
        expected = rs_grpo_binary(beta, 3, 8)
        got = row(shown, f"rs_grpo (β={beta:g})")
        assert (got["adv_correct"], got["adv_incorrect"]) == pytest.approx(expected, abs=1e-9)
    assert (row(shown, "passk_chen")["adv_correct"], row(shown, "passk_chen")["adv_incorrect"]) == pytest.approx(
        chen_passk_binary(3, 8, 3), abs=1e-9
    )
    assert "(k=3)" in row(shown, "passk_chen")["estimator"]


def test_invalid_combinations_are_explained_not_crashed():
    at = start()
    at.slider(key="alpha").set_value(0.9).run()
    assert not at.exception
    messages = errors(at)
    assert any("alpha=0.9 must be < beta=0.8" in m for m in messages), messages
    # The valid estimators are still shown.
    assert {"grpo", "dr_grpo"} <= set(table(at)["estimator"])
    at.slider(key="alpha").set_value(0.2).run()
    at.slider(key="group_size").set_value(4).run()
    at.slider(key="k").set_value(8).run()
    assert not at.exception
    assert any("passk_chen" in m and "k=8 must be <= group size" in m for m in errors(at)), errors(at)
    assert "passk_chen (k=8)" not in set(table(at)["estimator"])


def _poisson_binomial_by_enumeration(accuracies):
    law = {}
    for outcome in itertools.product((0, 1), repeat=len(accuracies)):
        p = math.prod(a if o else 1 - a for o, a in zip(outcome, accuracies))
        law[sum(outcome)] = law.get(sum(outcome), 0.0) + p
    return [law[z] for z in range(len(accuracies) + 1)]


def _left_quantile(probs, level):
    cumulative = np.cumsum(probs)
    return int(np.argmax(cumulative >= level - 1e-12))


def test_bundle_view_quantiles_and_advantages():
    at = start()
    at.slider(key="bundle_size").set_value(4).run()
    at.slider(key="bundle_acc").set_value((0.1, 0.7)).run()
    assert not at.exception
    accuracies = [0.1, 0.3, 0.5, 0.7]
    probs = _poisson_binomial_by_enumeration(accuracies)
    q_a, q_b = _left_quantile(probs, 0.2), _left_quantile(probs, 0.8)
    marks = table(at, 1)
    riskpo = row(marks, "riskpo (")
    assert (riskpo["q_alpha"], riskpo["q_beta"]) == (q_a, q_b)
    curve = table(at, 2)
    assert curve["prob"].tolist() == pytest.approx(probs, abs=1e-12)
    omega = 0.5
    label = riskpo["estimator"]
    for z, a in zip(curve["score"], curve[label]):
        band = max(z - q_a, 0) - max(z - q_b, 0) + q_a - q_b
        assert a == pytest.approx(-(1 + omega) * max(q_a - z, 0) + band, abs=1e-12)


def test_download_buttons_offer_csv_and_offline_html():
    at = start()
    keys = {b.key for b in at.get("download_button")}
    assert {"csv_advantage_vs_accuracy", "html_advantage_vs_accuracy", "csv_bundle_advantage", "html_bundle_advantage"} <= keys
    from app_lib.figures import advantage_shape_figure, standalone_html
    from app_lib.shapes import advantage_vs_accuracy
    from app_lib.choices import Knobs, build_choices

    choices, _ = build_choices(("grpo",), Knobs(), mode="per_question")
    html = standalone_html(advantage_shape_figure(advantage_vs_accuracy(choices, 4)[0]))
    # plotly.js itself is inlined (~4 MB) and no script is fetched from the network.
    fetches_script = re.search(r"<script[^>]+src=", html) is not None
    assert not fetches_script
    assert len(html) > 1_000_000


# --------------------------------------------------------------------------- view 2


def exact_bandit(rewards, init_probs, lr, steps, advantage):
    """Hand-rolled exact softmax PG: θ += η π ⊙ (A − E_π A)."""
    theta = np.log(np.asarray(init_probs, dtype=np.float64))
    r = np.asarray(rewards, dtype=np.float64)
    for _ in range(steps):
        pi = np.exp(theta - theta.max())
        pi /= pi.sum()
        a = advantage(r, pi)
        theta = theta + lr * pi * (a - pi @ a)
    pi = np.exp(theta - theta.max())
    pi /= pi.sum()
    return pi @ r, -(pi * np.log(pi)).sum(), pi[np.argmax(r)]


def test_bandit_exact_update_matches_hand_rolled_loop():
    at = start()
    at.radio(key="view").set_value("2 · Bandit runs").run()
    at.slider(key="bandit_steps").set_value(60).run()
    assert not at.exception and not errors(at)
    shown = table(at)
    rewards, init = [1.0, 0.8, 0.0], [0.05, 0.9, 0.05]
    beta = 2.0
    cases = {
        "dr_grpo": lambda r, pi: r - pi @ r,
        "rs_grpo": lambda r, pi: (np.exp(beta * r) / (pi @ np.exp(beta * r)) - 1) / beta,
    }
    for name, advantage in cases.items():
        expected = exact_bandit(rewards, init, 0.5, 60, advantage)
        got = row(shown, name)
        # Same float64 arithmetic in a different order: 1e-10 over 60 steps.
        assert (got["expected_reward"], got["entropy"], got["prob_best"]) == pytest.approx(expected, abs=1e-10)
    assert set(shown["expected_reward_std"]) == {0.0}  # exact updates: one deterministic run


def test_bandit_sampled_runs_seeds_and_explains_non_binary_rewards():
    at = start()
    at.radio(key="view").set_value("2 · Bandit runs").run()
    at.slider(key="bandit_steps").set_value(40).run()
    at.slider(key="bandit_seeds").set_value(2).run()
    at.radio(key="bandit_update").set_value("sampled").run()
    assert not at.exception
    assert any("passk_chen" in m and "binary" in m for m in errors(at)), errors(at)
    shown = table(at)
    assert "passk_chen (k=4)" not in set(shown["estimator"])
    assert (shown["expected_reward_std"] > 0).any()  # two seeds, sampled batches: they differ
    # Bernoulli rewards are binary, so pass@k training runs too.
    at.selectbox(key="bandit_noise").set_value("bernoulli").run()
    assert not at.exception and not errors(at)
    assert "passk_chen (k=4)" in set(table(at)["estimator"])
    # The policy animation has one frame per snapshot; every frame's policies are distributions.
    policy_fig = plotly_figures(at)[1]
    assert len(policy_fig["frames"]) >= 2
    for frame in policy_fig["frames"]:
        for trace in frame["data"]:
            assert sum(trace["y"]) == pytest.approx(1.0, abs=1e-9)
