"""The explorer's paper presets, pass@k vs k and sweeps, checked against independent computations:
hand-built curves for the matched-pass@1 interpolation, direct sandbox runs for what the views
show, and a rebuild of a shipped preset file from the sandbox."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_lib.passk_curve import matched_target, passk_vs_k, value_at_first_crossing

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "app_lib" / "data" / "presets"


def start(**widgets) -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    for key, value in widgets.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


# --------------------------------------------------------------------------- pass@k vs k


def test_passk_vs_k_interpolates_at_the_common_pass1():
    # A reaches pass@1 0.2 → 0.4 → 0.6, B only 0.1 → 0.3 → 0.5: the common target is 0.5 (B's best).
    curves = pd.DataFrame(
        {
            "estimator": ["A"] * 6 + ["B"] * 6,
            "k": [1, 1, 1, 8, 8, 8] * 2,
            "step": [0, 10, 20] * 4,
            "pass_at_1": [0.2, 0.4, 0.6] * 2 + [0.1, 0.3, 0.5] * 2,
            "pass_at_k": [0.2, 0.4, 0.6, 0.5, 0.7, 0.8, 0.1, 0.3, 0.5, 0.6, 0.7, 0.9],
        }
    )
    assert matched_target(curves) == 0.5
    table = passk_vs_k(curves).set_index(["estimator", "k", "when"])
    # A crosses 0.5 halfway between steps 10 and 20: pass@8 = (0.7 + 0.8) / 2 at step 15, by hand.
    assert table.loc[("A", 8, "matched pass@1"), "pass_at_k"] == pytest.approx(0.75, abs=1e-12)
    assert table.loc[("A", 8, "matched pass@1"), "step"] == pytest.approx(15.0, abs=1e-12)
    assert table.loc[("B", 8, "matched pass@1"), "pass_at_k"] == pytest.approx(0.9, abs=1e-12)
    assert table.loc[("A", 8, "end of training"), "pass_at_k"] == 0.8
    assert table.loc[("A", 1, "matched pass@1"), "pass_at_k"] == pytest.approx(0.5, abs=1e-12)  # k = 1 is pass@1
    assert np.isnan(value_at_first_crossing(np.array([0.1, 0.2]), np.array([1.0, 2.0]), 0.5)[1])  # never reached
    with pytest.raises(ValueError, match="pass_at_k"):
        passk_vs_k(curves.drop(columns="pass_at_k"))


def test_tabular_view_passk_vs_k_matches_direct_runs():
    at = start(view="tabular", estimators=["grpo"], tab_steps=20, tab_seeds=1, tab_passk=True)
    assert not [e.value for e in at.error]
    fig = next(e for e in at.get("plotly_chart") if e.proto.id.endswith("-fig_tabular_passk"))
    import json

    spec = json.loads(fig.proto.spec)
    end = next(t for t in spec["data"] if t["xaxis"] == "x")
    from sandbox import TabularConfig, run_tabular

    for k in (1, 16, 256):
        config = TabularConfig(
            num_prompts=40, responses_per_prompt=16, group_size=16, steps=20, lr=0.5, correctness_correlation=0.3, k=k
        )
        last = run_tabular(config, [("grpo", {})], seeds=1).metrics.iloc[-1]
        shown = dict(zip(_values(end["x"]), _values(end["y"])))[k]
        assert shown == pytest.approx(float(last["pass_at_k"]), abs=1e-12)  # the same run, logged at another k


def _values(node):
    if isinstance(node, dict):  # plotly's typed-array encoding
        import base64

        return np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"])).tolist()
    return node


# --------------------------------------------------------------------------- presets


def test_shipped_rs_bandit_preset_reproduces_the_paper():
    curves = pd.read_csv(PRESETS / "rs_bandit.csv")
    assert curves["step"].max() == 25_000 and set(curves["seeds"]) == {8}
    final = curves[curves["step"] == 25_000].set_index("beta")["expected_reward_mean"]
    assert sorted(final.index) == [0, 2, 4, 8, 16, 32, 64]
    # RS-GRPO §5.1, Fig. 3: β ∈ {0, 2} stay at the 0.6 mode, β >= 4 reach the optimum 1.0.
    assert final[[0, 2]].between(0.55, 0.65).all()
    assert (final[[4, 8, 16, 32, 64]] >= 0.9).all()


def test_shipped_riskpo_entropy_preset_is_what_the_sandbox_computes(tmp_path):
    import json

    from reproducible import run_module_reproducibly

    shipped = pd.read_csv(PRESETS / "riskpo_entropy.csv")
    settings = json.loads((PRESETS / "riskpo_entropy.json").read_text())
    assert settings["cpu_capability"] == "AVX2"
    # Rebuilt with the kernels the preset was built with: AVX-512 vs AVX2 kernels flip one RiskPO seed's
    # trajectory (presets_build).
    run_module_reproducibly("app_lib.presets_build", "--only", "riskpo_entropy", "--out", str(tmp_path), timeout=600)
    rebuilt = pd.read_csv(tmp_path / "riskpo_entropy.csv")
    assert int(rebuilt["seeds"].iloc[0]) == int(shipped["seeds"].iloc[0])
    numeric = [c for c in shipped.columns if c.endswith(("_mean", "_std"))]
    # Both files keep 6 significant digits, written by the same code: equal up to that rounding
    # (relative 1e-5, absolute 1e-9 near 0).
    np.testing.assert_allclose(rebuilt[numeric].to_numpy(float), shipped[numeric].to_numpy(float), rtol=1e-5, atol=1e-9)


def test_presets_view_draws_the_shipped_numbers_with_the_paper_overlay():
    at = start(view="presets", preset="rs_bandit")
    shown = at.dataframe[0].value.set_index("beta")
    shipped = pd.read_csv(PRESETS / "rs_bandit.csv")
    final = shipped[shipped["step"] == shipped["step"].max()].set_index("beta")
    assert shown["expected_reward_mean"].to_numpy() == pytest.approx(final["expected_reward_mean"].to_numpy(), abs=0)
    assert list(shown["paper"]) == ["stays at 0.6"] * 2 + ["reaches 1.0"] * 5
    at.radio(key="preset").set_value("bundle_sweep").run()
    fig = next(e for e in at.get("plotly_chart") if e.proto.id.endswith("-fig_preset_bundle"))
    import json

    paper = next(t for t in json.loads(fig.proto.spec)["data"] if t.get("name") == "paper Avg.")
    assert _values(paper["y"]) == [
        65.80,
        67.20,
        67.65,
        68.05,
        68.25,
        67.85,
        67.6,
        67.00,
        66.75,
        66.65,
    ]  # RiskPO v2 Table 4
    at.radio(key="preset").set_value("passk").run()
    assert not at.exception
    conclusion = " ".join(i.value for i in at.info)
    assert "at matched pass@1 = " in conclusion and "pass@256 is" in conclusion
    at.radio(key="preset").set_value("lemma2").run()
    value = float(next(m.value for m in at.metric if m.label.startswith("Δπ(a*) at β = 0")))
    assert value == pytest.approx(0.05 * (0.0115 - 0.02295), rel=1e-5)  # by hand (tests/app/test_app.py)


# --------------------------------------------------------------------------- sweeps


def test_sweep_view_final_metric_equals_direct_runs():
    at = start(
        view="sweeps",
        estimators=["riskpo"],
        sweep_param="bundle size B",
        sweep_values_bundle_size=[1, 5],
        sweep_metric="entropy",
        sweep_steps=20,
        sweep_seeds=2,
    )
    assert not [e.value for e in at.error]
    shown = at.dataframe[0].value.set_index("bundle size B")
    from sandbox import TabularConfig, run_tabular

    config = TabularConfig(group_size=16, steps=20, k=4, risk_alpha=0.2, risk_beta=0.8, risk_omega=0.5, log_every=1)
    for b in (1, 5):
        metrics = run_tabular(
            config, [("riskpo", {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": b})], seeds=2
        ).metrics
        last = metrics[metrics["step"] == 20]["entropy"]
        assert shown.loc[b, "final entropy"] == pytest.approx(last.mean(), abs=1e-12)
        assert shown.loc[b, "std over seeds"] == pytest.approx(last.std(ddof=1), abs=1e-12)
