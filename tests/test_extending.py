"""docs/extending.md: every example there runs, and does what the page says it does.

Each example is the ```python block after an ``<!-- example: NAME -->`` marker; the test
executes that exact text, so the page cannot drift from the code. The registries the
examples add to (estimators, claims, views) are module-level dicts that other test files
enumerate, so every test restores them in place and checks that the addition is gone.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"
_MARKED_BLOCK = re.compile(r"<!-- example: (\w+) -->\s*```python\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(_MARKED_BLOCK.findall(DOC.read_text()))


def run_example(name: str) -> dict:
    """Execute one example as its own module; returns its namespace."""
    namespace = {"__name__": f"extending_example_{name}"}
    exec(compile(examples()[name], f"{DOC}:<example {name}>", "exec"), namespace)
    return namespace


@contextlib.contextmanager
def restored(*registries):
    """Put each dict/set back to its exact contents afterwards (in place: other modules hold references)."""
    saved = [registry.copy() for registry in registries]
    try:
        yield
    finally:
        for registry, contents in zip(registries, saved):
            registry.clear()
            registry.update(contents)


def test_the_page_has_the_five_examples():
    assert set(examples()) == {"estimator", "claim", "view", "reward", "backend"}


def test_estimator_example_is_registered_and_computes_rloo():
    from llm.config import TrainConfig
    from llm.train import build_estimator
    from theory import estimator_registry as registry
    from theory import get_estimator, list_estimators

    with restored(registry.ESTIMATORS, registry._ALIASES, registry._ROLES):
        run_example("estimator")
        assert "rloo" in list_estimators()
        rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0], [0.3, 0.3, 0.3, 0.3]])
        # By hand: r_i minus the mean of the other three, e.g. row 0, item 0: 1 − (0 + 0 + 1)/3 = 2/3.
        expected = torch.tensor([[2 / 3, -2 / 3, -2 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3, -1.0], [0.0, 0.0, 0.0, 0.0]])
        # Independently, a leave-one-out loop.
        loop = torch.tensor(
            [[float(row[i] - torch.cat([row[:i], row[i + 1 :]]).mean()) for i in range(4)] for row in rewards]
        )
        for name in ("rloo", "leave_one_out"):  # the name and its alias
            out = get_estimator(name)(rewards)
            # float32 arithmetic on values of order 1: a few ulps.
            torch.testing.assert_close(out.advantages, expected, rtol=0, atol=1e-6)
            torch.testing.assert_close(out.advantages, loop, rtol=0, atol=1e-6)
            assert out.metrics["frac_zero_adv_groups"] == pytest.approx(1 / 3)
        # The trainer builds it from its config keys.
        estimator = build_estimator(TrainConfig(estimator="rloo", estimator_params={}))
        assert type(estimator).__name__ == "RLOO"
    assert "rloo" not in list_estimators() and "leave_one_out" not in registry._ALIASES


def test_claim_example_is_registered_and_its_check_holds(tmp_path):
    import sandbox.claims.registry as registry
    from sandbox import CLAIMS, get_claim, list_claims, size_overrides
    from sandbox.__main__ import run_claim

    with restored(registry._REGISTRY, registry.CLAIMS, registry.SIMULATION_CLAIMS):
        run_example("claim")
        assert list_claims()[-1].name == "rs_small_beta_mean"
        record = get_claim("rs_small_beta_mean")
        assert record.kind == "instances" and "rs_small_beta_mean" not in registry.SIMULATION_CLAIMS
        out = CLAIMS["rs_small_beta_mean"](**size_overrides("rs_small_beta_mean", instances=50))
        assert out["holds"] is True and len(out["table"]) == 50
        assert out["claim"] == record.title and out["kind"] == "instances"  # the registry's text fields are added
        # The same gaps from the printed formula, written out independently in float64.
        rewards = torch.rand(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        beta = 1e-3
        weights = torch.exp(beta * rewards)
        rs = (weights / weights.mean(-1, keepdim=True) - 1) / beta
        gap = (rs - (rewards - rewards.mean(-1, keepdim=True))).abs().amax(-1)
        # The direct formula loses ~1e-16/β = 1e-13 to cancellation; the gaps themselves are ~1e-4.
        assert [row["max_abs_gap"] for row in out["table"]] == pytest.approx(gap.tolist(), abs=1e-11)
        assert 0 < float(gap.max()) <= beta / 2 * 1.01  # the Taylor bound the claim's comment derives
        # The gap is the first-order term β(x² − Var x)/2: doubling β doubles it, up to a relative O(β) = 1e-3.
        doubled = CLAIMS["rs_small_beta_mean"](seeds=50, beta=2 * beta)
        ratios = [d["max_abs_gap"] / row["max_abs_gap"] for d, row in zip(doubled["table"], out["table"])]
        assert ratios == pytest.approx([2.0] * 50, rel=1e-2)
        # What `python -m sandbox rs_small_beta_mean --instances 20` does: JSON, CSV and the (table) figure.
        assert run_claim("rs_small_beta_mean", None, str(tmp_path), instances=20)["holds"] is True
        written = {p.name for p in tmp_path.glob("rs_small_beta_mean.*")}
        assert {
            f"rs_small_beta_mean.{suffix}" for suffix in ("json", "csv", "html")
        } <= written  # .png too with kaleido
    assert "rs_small_beta_mean" not in CLAIMS and all(c.name != "rs_small_beta_mean" for c in list_claims())


def test_view_example_is_listed_and_renders_in_the_app():
    from streamlit.testing.v1 import AppTest

    from app_lib import views

    views.load_views()  # the built-in views register on first import: snapshot after it, or they would be lost
    with restored(views.VIEWS):
        run_example("view")
        listed = views.load_views()
        assert "passk_calculator" in [view.slug for view in listed]
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.query_params["view"] = "passk_calculator"
        at.query_params["k"] = "3"  # the sidebar's k slider, from the URL
        at.query_params["calc_p"] = "0.5"  # the view's own slider, from the URL (it is created through app_lib.state)
        at.run()
        assert not at.exception, at.exception
        assert at.header[0].value.startswith("pass@k of a prompt")
        assert at.metric[0].label == "pass@3 = 1 − (1 − p)^k"
        assert at.metric[0].value == f"{1 - (1 - 0.5) ** 3:.4f}" == "0.8750"
        assert at.slider(key="calc_p").value == 0.5
        at.slider(key="calc_p").set_value(0.25).run()
        assert at.metric[0].value == f"{1 - 0.75**3:.4f}" and at.query_params["calc_p"] == "0.25"  # and in the URL
    assert "passk_calculator" not in views.VIEWS and "shapes" in views.VIEWS


def test_reward_example_is_resolved_by_name_and_scored_in_a_worker(tmp_path, monkeypatch):
    from llm.data import Example
    from llm.rewards import RewardPipeline, resolve_reward_function

    (tmp_path / "my_rewards.py").write_text(examples()["reward"])
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_rewards

    assert resolve_reward_function("my_rewards:last_number_reward") is my_rewards.last_number_reward
    completions = ["so it is \\boxed{42}", "1,000 apples, then 12", "no number here", "-3.5 or rather -3.50"]
    answers = ["42", "12", "7", "-3.5"]
    rows = [Example(id=str(i), question="q", answer=a, source="test") for i, a in enumerate(answers)]
    # One worker process, as the trainer runs user rewards (the worker imports my_rewards by path).
    with RewardPipeline(
        [("my_rewards:last_number_reward", 1.0), ("format", 0.5)], num_workers=1, timeout_s=30
    ) as pipeline:
        assert pipeline.in_worker["my_rewards:last_number_reward"]
        total, per_function, errors = pipeline(completions, rows)
    assert per_function["my_rewards:last_number_reward"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert per_function["format"].tolist() == [1.0, 0.0, 0.0, 0.0]  # one balanced \boxed{} only in the first
    assert total.tolist() == [1.5, 1.0, 0.0, 1.0] and errors == {"my_rewards:last_number_reward": 0, "format": 0}


def test_backend_example_produces_a_rollout_the_trainer_accepts():
    from llm.collect import prompt_groups, stack_groups
    from llm.loss import completion_logprobs
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer

    backend_cls = run_example("backend")["CannedBackend"]
    tokenizer = load_tokenizer(SMOLLM2)
    canned = ["The answer is 4.", "5", "I am not sure, maybe 22"]
    backend = backend_cls(tokenizer, canned)
    with pytest.raises(ValueError, match="group_size=2"):
        backend.generate(None, ["x"], group_size=2, seed=0)
    prompts = ["What is 2+2?", "Say a number between one and nine, please"]
    rollout = backend.generate(None, prompts, group_size=3, seed=0)
    # prompt-major rows; each prompt repeated G times, left-padded
    assert rollout.completions == canned * 2 and rollout.prompt_ids.shape[0] == 6
    assert torch.equal(rollout.prompt_ids[0], rollout.prompt_ids[2]) and not torch.equal(
        rollout.prompt_ids[2], rollout.prompt_ids[3]
    )
    assert tokenizer.decode(rollout.prompt_ids[0][rollout.prompt_mask[0].bool()]) == prompts[0]
    # right-padded completions whose unmasked tokens decode back to the text, mask a prefix of ones
    for row, text in enumerate(rollout.completions):
        assert tokenizer.decode(rollout.completion_ids[row][rollout.completion_mask[row].bool()]) == text
    assert bool((rollout.completion_mask[:, 1:] <= rollout.completion_mask[:, :-1]).all())
    # The trainer's own steps after collect(): split per prompt, re-pad, score under a policy.
    advantages = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    groups = prompt_groups(rollout, advantages, group_size=3)
    assert [g["signal"] for g in groups] == [True, False]
    batch = stack_groups(groups, tokenizer.pad_token_id)
    model = build_tiny_model(tokenizer, seed=0)
    logprobs, _ = completion_logprobs(
        model, batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"], batch["completion_mask"]
    )
    mask = batch["completion_mask"].bool()
    assert logprobs.shape == batch["completion_ids"].shape
    assert bool(torch.isfinite(logprobs[mask]).all()) and bool((logprobs[mask] < 0).all())


def test_backend_wiring_described_on_the_page_reaches_the_trainer_config(monkeypatch):
    """There is no backend registry: the page says to add the name to ROLLOUT_BACKENDS; check that is the gate."""
    import llm.config
    from llm.config import TrainConfig

    with pytest.raises(ValueError, match="rollout_backend"):
        TrainConfig(rollout_backend="canned").validate()
    monkeypatch.setattr(llm.config, "ROLLOUT_BACKENDS", (*llm.config.ROLLOUT_BACKENDS, "canned"))
    TrainConfig(rollout_backend="canned").validate()
