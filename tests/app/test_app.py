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
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]

APP = str(REPO / "app.py")
# Generous: a cold AppTest run imports torch/plotly and runs the default view.
TIMEOUT = 120


def start(view: int = 1, **widgets) -> AppTest:
    """A fresh app opened on ``view`` (the ?view=N link) with the given widget values (by key),
    so the first run already does only the work the test needs."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["view"] = str(view)
    for key, value in widgets.items():
        at.session_state[key] = value
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


def figure(at: AppTest, key: str) -> dict:
    """The figure drawn by ``st.plotly_chart(..., key=key)``."""
    (match,) = [e for e in at.get("plotly_chart") if e.proto.id.endswith(f"-{key}")]
    return _decode_typed_arrays(json.loads(match.proto.spec))


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
    assert {
        "csv_advantage_vs_accuracy",
        "html_advantage_vs_accuracy",
        "csv_bundle_advantage",
        "html_bundle_advantage",
    } <= keys
    from app_lib.choices import Knobs, build_choices
    from app_lib.figures import advantage_shape_figure, standalone_html
    from app_lib.shapes import advantage_vs_accuracy

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
    at = start(view=2, bandit_steps=50)
    assert not at.exception
    # pass@k estimators have no exact population form without a group size; the sandbox decides
    # whether an exact bandit update supplies one. Either way nothing else may be reported.
    assert not errors(at)
    infos = [i.value for i in at.info if i.value.startswith("Not drawn with exact updates")]
    assert infos in (
        [],
        [
            "Not drawn with exact updates: passk_chen (k=4) (no exact population form; choose 'sampled' to include "
            "them)."
        ],
    )
    shown = table(at)
    rewards, init = [1.0, 0.8, 0.0], [0.05, 0.9, 0.05]
    beta = 2.0
    cases = {
        "dr_grpo": lambda r, pi: r - pi @ r,
        "rs_grpo": lambda r, pi: (np.exp(beta * r) / (pi @ np.exp(beta * r)) - 1) / beta,
    }
    for name, advantage in cases.items():
        expected = exact_bandit(rewards, init, 0.5, 50, advantage)
        got = row(shown, name)
        # Same float64 arithmetic in a different order: 1e-10 over 50 steps.
        assert (got["expected_reward"], got["entropy"], got["prob_best"]) == pytest.approx(expected, abs=1e-10)
    assert set(shown["expected_reward_std"]) == {0.0}  # exact updates: one deterministic run


def test_bandit_sampled_runs_seeds_and_explains_invalid_settings():
    at = start(view=2, bandit_steps=50, bandit_update="sampled", bandit_seeds=2)
    at.selectbox(key="bandit_noise").set_value("bernoulli").run()
    assert not at.exception and not errors(at)
    shown = table(at)
    assert len(shown) == 6
    assert (shown["expected_reward_std"] > 0).any()  # two seeds, sampled batches: they differ
    for column in ("expected_reward", "prob_best"):
        assert shown[column].between(0.0, 1.0).all()
    # The policy animation has one frame per snapshot; every frame's policies are distributions.
    policy_fig = plotly_figures(at)[1]
    assert len(policy_fig["frames"]) >= 2
    for frame in policy_fig["frames"]:
        policies = [trace for trace in frame["data"] if trace.get("yaxis") == "y"]
        assert len(policies) == 6
        for trace in policies:
            assert sum(trace["y"]) == pytest.approx(1.0, abs=1e-9)
        # The reward curve is in every frame, on its own axis, so playing cannot drop it.
        (reward,) = [trace for trace in frame["data"] if trace.get("yaxis") == "y2"]
        assert reward["y"] == [1.0, 0.8, 0.0]
        assert frame["traces"] == list(range(7))
    # The natural-gradient step needs exact updates: explained, nothing plotted.
    at.selectbox(key="bandit_optimizer").set_value("natural").run()
    assert not at.exception
    assert any("Invalid bandit settings" in m and "optimizer='natural'" in m for m in errors(at)), errors(at)
    assert not at.get("plotly_chart")


# --------------------------------------------------------------------------- view 3


def test_tabular_view_shows_seed_means_of_the_simulator():
    at = start(view=3, estimators=["grpo", "riskpo"], tab_steps=20, tab_seeds=2)
    assert not at.exception and not errors(at)
    shown = table(at)
    assert list(shown["estimator"]) == ["grpo", "riskpo (α=0.2, β=0.8, ω=0.5, B=5)"]

    from sandbox import TabularConfig, run_tabular

    config = TabularConfig(
        num_prompts=40, responses_per_prompt=16, group_size=16, steps=20, lr=0.5, correctness_correlation=0.3, k=4
    )
    for label, spec in (
        ("grpo", ("grpo", {})),
        ("riskpo (", ("riskpo", {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 5})),
    ):
        direct = run_tabular(config, [spec], seeds=2).metrics
        last = direct[direct["step"] == 20]
        got = row(shown, label)
        for column in ("mean_reward", "entropy", "pass_at_k", "cvar"):
            values = last[column].to_numpy()
            # The same deterministic run: only the order of the two-seed mean may differ.
            assert got[column] == pytest.approx(values.mean(), abs=1e-12)
            assert got[f"{column}_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        # Binary rewards: the policy's pass@1 is its mean reward, so the view shows one panel for both.
        assert np.allclose(last["pass_at_1"], last["mean_reward"], atol=1e-12)
    assert "pass_at_1" not in shown.columns
    titles = [a["text"] for a in plotly_figures(at)[0]["layout"]["annotations"]]
    assert "mean reward = pass@1 (binary rewards)" in titles and "pass@1" not in titles
    assert (shown["pass_at_k"] >= shown["mean_reward"] - 1e-12).all()  # pass@4 >= pass@1
    # The ±std band of a non-negative quantity stays >= 0 (it went below 0 for CVaR); the mean line is untouched.
    for trace in plotly_figures(at)[0]["data"]:
        if trace.get("fill") == "toself":
            assert min(trace["y"]) >= 0.0 or trace["yaxis"] == "y3"  # y3: Cov(log π, A) has no lower bound


def test_tabular_view_explains_invalid_settings():
    at = start(view=3, estimators=["grpo", "riskpo"], tab_steps=10)
    at.slider(key="tab_prompts").set_value(45).run()  # not a multiple of B = 4
    at.slider(key="bundle_size").set_value(4).run()
    assert not at.exception
    # In the controls' names (issue 21 bug 9: was "bundle_size=4 must divide num_prompts=45").
    assert any("riskpo" in m and "B (sidebar)=4 must divide prompts P=45" in m for m in errors(at)), errors(at)
    assert list(table(at)["estimator"]) == ["grpo"]
    at.slider(key="alpha").set_value(0.9).run()
    assert not at.exception
    # α > β: GRPO is still drawn (the whole view used to disappear); the risk panels are left out, said so.
    assert list(table(at)["estimator"]) == ["grpo"]
    assert any("Risk panels" in w.value and "α = 0.9, β = 0.8" in w.value for w in at.warning)


# --------------------------------------------------------------------------- view 4


def rs_optimal_prob_change(rewards, probs, beta):
    """dπ(a*)/dη of θ ← θ + η π⊙(A − E_π A), A the RS-GRPO population advantage (NumPy, from the formulas)."""
    r, pi = np.asarray(rewards, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    weights = np.exp(beta * (r - r.max()))  # shifted so β up to 1e3 cannot overflow; the ratio is unchanged
    adv = r - pi @ r if beta == 0 else (weights / (pi @ weights) - 1) / beta
    direction = pi * (adv - pi @ adv)
    change = pi * (direction - pi @ direction)
    return change[np.argmax(r)]


def metric_value(at: AppTest, label_start: str) -> str:
    match = [m for m in at.metric if m.label.startswith(label_start)]
    assert len(match) == 1, [m.label for m in at.metric]
    return match[0].value


def test_theorem_view_numbers():
    at = start(view=4)
    assert not at.exception and not errors(at)
    # Lemma 2 instance r = (1, 0.8, 0), π = (0.05, 0.9, 0.05): the mean objective lowers π(a*).
    expected = rs_optimal_prob_change([1, 0.8, 0], [0.05, 0.9, 0.05], 0.0)
    assert expected == pytest.approx(-0.0005725, abs=1e-12)  # by hand: 0.05·(0.0115 − 0.02295)
    assert float(metric_value(at, "Δπ(a*) at β = 0")) == pytest.approx(
        expected, rel=1e-5
    )  # shown with 6 significant digits
    # β₀ on the app's grid, found independently.
    grid = np.logspace(-2, 3, 201)
    positive = np.array([rs_optimal_prob_change([1, 0.8, 0], [0.05, 0.9, 0.05], b) > 0 for b in grid])
    beta0 = grid[np.argmax(positive[::-1].cumprod()[::-1].astype(bool))]
    assert float(metric_value(at, "β₀")) == pytest.approx(beta0, rel=5e-3)  # shown with 3 significant digits
    lemma_fig = figure(at, "fig_lemmas")
    marked = sorted(shape["x0"] for shape in lemma_fig["layout"]["shapes"] if shape.get("x0") == shape.get("x1"))
    assert marked[0] == pytest.approx(beta0, rel=1e-12)  # the β₀ line sits on the grid point itself
    assert lemma_fig["layout"]["xaxis"]["range"] == pytest.approx([-2.0, 3.0])  # log10 of the β grid ends

    # Proposition 1: the shown residual/η and residual/η² columns are one quantity at two scalings,
    # and residual/η shrinks in proportion to η (an O(η²) remainder).
    prop1 = table(at, 0)
    assert np.allclose(
        prop1["max_abs_residual_over_eta"], prop1["max_abs_residual_over_eta2"] * prop1["eta"], rtol=1e-12
    )
    shrink = prop1["max_abs_residual_over_eta"].to_numpy()[1:] / prop1["max_abs_residual_over_eta"].to_numpy()[:-1]
    assert np.allclose(
        shrink, prop1["eta"].to_numpy()[1:] / prop1["eta"].to_numpy()[:-1], rtol=0.05
    )  # 5%: the η³ term at η=0.1

    # Theorem 2: every instance satisfying Assumption 1 obeys the ordering; the table accounts for every instance.
    thm2 = table(at, 1)
    assert metric_value(at, "instances satisfying") == metric_value(at, "… of which")
    counts = thm2.groupby("instances")["count"].sum()
    assert len(counts) >= 2 and (counts == 2000).all()  # every family accounts for all its instances
    assert (thm2[thm2["assumption_1"] == "assumption holds"]["frac_cov_mvar_le_cov_mean"] == 1.0).all()


def test_theorem_view_follows_instance_sliders_and_explains_bad_input():
    at = start(view=4)
    at.slider(key="lemma_r2").set_value(0.5).run()
    at.slider(key="lemma_pbest").set_value(0.2).run()
    at.slider(key="lemma_psecond").set_value(0.7).run()
    assert not at.exception
    expected = rs_optimal_prob_change([1, 0.5, 0], [0.2, 0.7, 0.1], 0.0)
    assert float(metric_value(at, "Δπ(a*) at β = 0")) == pytest.approx(expected, rel=1e-5)
    at.slider(key="lemma_pbest").set_value(0.5).run()  # 0.5 + 0.7 > 1
    assert any("must be < 1" in m for m in errors(at)), errors(at)
    at.slider(key="alpha").set_value(0.9).run()
    assert not at.exception
    assert any("Theorem 2" in m and "alpha=0.9 must be < beta=0.8" in m for m in errors(at)), errors(at)
    # The view radio navigates (the other tests open views by the ?view=N link).
    at.radio(key="view").set_value("shapes").run()
    assert not at.exception
    assert at.header[0].value.startswith("Advantage shape")
