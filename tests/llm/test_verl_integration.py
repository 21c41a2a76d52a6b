"""riskrl estimators inside verl (llm/integrations/verl.py); skipped without the ``verl`` extra.

The reference for every advantage check is an independent ``get_estimator`` built from the same
options and fed the (P, G) matrix of sequence rewards, assembled here from the rows the way the
papers define it (prompt groups by uid, first appearance first): verl's own ``compute_advantage``
(legacy and v1 trainer paths) must put exactly that estimator's advantage on every response token
of the row and zero elsewhere. verl is imported lazily (a fixture), so collecting this file costs
nothing when its tests are deselected; ``import verl`` itself takes seconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

if importlib.util.find_spec("verl") is None:
    pytest.skip(
        "verl is not installed: pip install -e '.[verl]' (verl>=0.9,<0.10) to test llm/integrations/verl.py",
        allow_module_level=True,
    )

from theory import get_estimator, list_estimators  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RISKPO = {"alpha": 0.2, "beta": 0.8, "omega": 0.5, "bundle_size": 2, "seed": 7}
# Options per estimator for the parametrised equality test (bundle_size 2 divides P=4 prompts).
OPTIONS = {
    "grpo": {},
    "dr_grpo": {},
    "rs_grpo": {"beta": 2.0},
    "passk_chen": {"k": 2},
    "passk_loo_max": {},
    "pkpo": {"k": 2},
    "passk_reweight": {"k": 2},
    "riskpo": RISKPO,
    "riskpo_seeking": RISKPO,
    "riskpo_centred": RISKPO,
    "rvar": {"alpha": 0.25, "beta": 0.75},
    "cvar": {"alpha": 0.25},
}


@pytest.fixture(scope="module")
def rv():
    """The integration module, imported the way verl does it (``import verl`` first)."""
    import verl  # noqa: F401

    from llm.integrations import verl as module

    return module


@pytest.fixture(autouse=True)
def fresh_estimators(rv):
    rv.reset()
    yield
    rv.reset()


def verl_batch(num_prompts=4, n=4, length=6, seed=0, shuffle=True, binary=False, device="cpu"):
    """A DataProto as verl's trainer builds it: uids per prompt, ``repeat(n, interleave=True)``,
    a right-padded response mask, the score on the last response token (verl's reward managers)
    plus a token-level term, garbage in the padding (must be ignored), rows reordered afterwards
    (verl's ``balance_batch`` reorders rows before the advantage)."""
    from verl import DataProto

    gen = torch.Generator().manual_seed(seed)
    prompts = DataProto.from_dict(
        tensors={"prompt_ids": torch.arange(num_prompts).unsqueeze(-1)},
        non_tensors={"uid": np.array([str(uuid.UUID(int=seed * 1000 + i)) for i in range(num_prompts)], dtype=object)},
    )
    batch = prompts.repeat(repeat_times=n, interleave=True)
    rows = len(batch)
    lengths = torch.randint(1, length + 1, (rows,), generator=gen)
    mask = (torch.arange(length).unsqueeze(0) < lengths.unsqueeze(-1)).long()
    tokens = torch.zeros(rows, length)
    tokens[torch.arange(rows), lengths - 1] = (1.0 if binary else 0.7) * torch.randint(
        0, 2, (rows,), generator=gen
    ).float()
    if not binary:  # a token-level term; sequence rewards stay in [0, 1]
        tokens += 0.05 * torch.rand(rows, length, generator=gen) * mask
    tokens += 100.0 * (1 - mask)  # padding: never part of a sequence reward
    batch.batch["token_level_rewards"] = tokens.to(device)
    batch.batch["response_mask"] = mask.to(device)
    if shuffle:
        batch.reorder(torch.randperm(rows, generator=gen))
    return batch


def reference_matrix(batch):
    """(P, G) sequence rewards and the row of each entry, built independently of the integration."""
    uids = list(batch.non_tensor_batch["uid"])
    order = list(dict.fromkeys(uids))
    rows = [[r for r, u in enumerate(uids) if u == uid] for uid in order]
    tokens = batch.batch["token_level_rewards"].cpu()
    mask = batch.batch["response_mask"].cpu().bool()
    seq = torch.stack([tokens[r][mask[r]].sum() for r in range(len(uids))])
    return seq[torch.tensor(rows)], torch.tensor(rows)


def expected_tokens(batch, advantages, rows):
    per_row = torch.zeros(len(batch))
    per_row[rows.reshape(-1)] = advantages.reshape(-1).float()
    return per_row.unsqueeze(-1) * batch.batch["response_mask"].cpu().float()


def algo_config(options):
    from omegaconf import OmegaConf

    # What Hydra hands the estimator for +algorithm.riskrl.<key>=<value>: config.algorithm.
    return OmegaConf.create({"adv_estimator": "x", "gamma": 1.0, "lam": 1.0, "riskrl": dict(options)})


def legacy_compute(batch, name, options):
    from verl.trainer.ppo.ray_trainer import compute_advantage

    return compute_advantage(batch, adv_estimator=name, num_repeat=4, config=algo_config(options))


def v1_compute(batch, name, options):
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    keys = [f"{uid}_0_{i}" for i, uid in enumerate(batch.non_tensor_batch["uid"])]
    return compute_advantage_for_multi_trajectories(
        batch, batch_keys=keys, adv_estimator=name, num_repeat=4, config=algo_config(options)
    )


# --------------------------------------------------------------------------- registration


def test_every_registry_estimator_is_registered_with_prefix_and_safe_aliases(rv):
    from verl.trainer.ppo import core_algos

    names = list(list_estimators())
    assert len(names) >= 12
    for name in names:
        fn = core_algos.get_adv_estimator_fn(f"riskrl_{name}")
        assert fn.riskrl_name == name
    # grpo is verl's (hard-wired in compute_advantage): never shadowed, reported as skipped.
    assert "grpo" in rv.SKIPPED_ALIASES and "grpo" not in rv.ALIASES
    assert getattr(core_algos.get_adv_estimator_fn("grpo"), "riskrl_name", None) is None
    for alias in ("riskpo", "rs_grpo", "cvar"):
        assert core_algos.get_adv_estimator_fn(alias).riskrl_name == alias
    assert set(rv.ALIASES) == set(names) - set(rv.SKIPPED_ALIASES)
    rv.check()
    with pytest.raises(RuntimeError, match=r"missing \['riskrl_nope'\]"):
        rv.check(["riskrl_nope"])
    with pytest.raises(RuntimeError, match=r"another plug-in \['gae'\]"):
        rv.check(["gae"])


def test_entry_point_is_declared_in_the_installed_metadata():
    eps = importlib.metadata.entry_points(group="verl.plugins")
    ours = [ep for ep in eps if ep.name == "riskrl"]
    assert ours, (
        "no 'riskrl' entry point in group verl.plugins: re-run pip install -e '.[verl]' (or pip install "
        "--no-deps -e .) so the installed metadata has pyproject's [project.entry-points.'verl.plugins']"
    )
    assert ours[0].value == "llm.integrations.verl"


# --------------------------------------------------------------------------- advantages through verl


@pytest.mark.parametrize("path", [legacy_compute, v1_compute], ids=["legacy", "v1"])
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_verl_compute_advantage_returns_riskrl_advantages(rv, name, path):
    assert set(OPTIONS) == set(list_estimators()), "add the new estimator to OPTIONS"
    binary = name.startswith("passk") or name == "pkpo"  # the pass@k family needs 0/1 rewards
    batch = verl_batch(binary=binary)
    rewards, rows = reference_matrix(batch)
    expected = expected_tokens(batch, get_estimator(name, **OPTIONS[name])(rewards).advantages, rows)
    out = path(batch, f"riskrl_{name}", OPTIONS[name])
    # Exact: the integration feeds the estimator the same float32 matrix (sum over the same mask
    # in the same order) and only scatters/multiplies by 0/1 afterwards; RiskPO uses the same seed.
    assert torch.equal(out.batch["advantages"], expected)
    assert torch.equal(out.batch["returns"], expected)
    # The short alias is the same estimator.
    if name in rv.ALIASES:
        rv.reset()
        again = path(verl_batch(binary=binary), name, OPTIONS[name])
        assert torch.equal(again.batch["advantages"], expected)


def test_advantages_vary_within_groups_and_are_zero_off_mask(rv):
    # Guards the equality test against a degenerate batch: RiskPO gives distinct values and the
    # padding (rewards 100) never leaks.
    batch = verl_batch(num_prompts=6)
    out = legacy_compute(batch, "riskrl_riskpo", RISKPO).batch
    adv, mask = out["advantages"], out["response_mask"].bool()
    assert (adv[~mask] == 0).all()
    assert len(torch.unique(adv[mask])) > 2


def test_tracker_persists_across_steps_and_per_options(rv):
    reference = get_estimator("riskpo", **RISKPO)
    for step in range(3):
        batch = verl_batch(seed=step)
        rewards, rows = reference_matrix(batch)
        reference_out = reference(rewards)
        out = legacy_compute(batch, "riskrl_riskpo", RISKPO)
        assert torch.equal(out.batch["advantages"], expected_tokens(batch, reference_out.advantages, rows)), step
    live = rv.estimator_for("riskrl_riskpo", algo_config(RISKPO))
    assert live.state_dict()["tracker"] == reference.state_dict()["tracker"]
    assert rv.last_metrics("riskpo") == reference_out.metrics
    # Other options -> another instance with its own tracker; the alias shares the prefixed one.
    other = rv.estimator_for("riskrl_riskpo", algo_config({**RISKPO, "omega": 1.0}))
    assert other is not live and not other.tracker.initialized
    assert rv.estimator_for("riskpo", algo_config(RISKPO)) is live


def test_no_riskrl_section_uses_the_estimator_defaults(rv):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.ray_trainer import compute_advantage

    batch = verl_batch(num_prompts=5)  # riskpo's default bundle_size is 5
    rewards, rows = reference_matrix(batch)
    expected = expected_tokens(batch, get_estimator("riskpo")(rewards).advantages, rows)
    out = compute_advantage(batch, adv_estimator="riskrl_riskpo", config=OmegaConf.create({"gamma": 1.0}))
    assert torch.equal(out.batch["advantages"], expected)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_config(root, mode="auto", path=None, estimator="riskrl_riskpo", options=RISKPO):
    from omegaconf import OmegaConf

    return OmegaConf.create(
        {
            "algorithm": {"adv_estimator": estimator, "riskrl": dict(options)},
            "trainer": {
                "resume_mode": mode,
                "resume_from_path": path,
                "default_local_dir": str(root),
                "checkpoint_callback_class": "llm.integrations.verl.RiskrlCheckpointCallback",
            },
        }
    )


def save_like_verl(callback, root, step):
    """What the v1 trainer's _save_checkpoint does around the hook: folder, tracker file, on_save."""
    folder = Path(root) / f"global_step_{step}"
    folder.mkdir(parents=True, exist_ok=True)
    (Path(root) / "latest_checkpointed_iteration.txt").write_text(str(step))
    callback.on_save(trainer=None, global_step=step, checkpoint_dir=str(folder), async_save=False)
    return folder


def test_checkpoint_round_trip_restores_the_identical_tracker(rv, tmp_path):
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback

    config = checkpoint_config(tmp_path)
    callback = build_checkpoint_callback(config)  # verl's own loader of trainer.checkpoint_callback_class
    assert isinstance(callback, rv.RiskrlCheckpointCallback) and callback.restored_from is None
    for step in range(3):
        legacy_compute(verl_batch(seed=step), "riskrl_riskpo", RISKPO)
    folder = save_like_verl(callback, tmp_path, 3)
    saved_state = rv.estimator_for("riskrl_riskpo", algo_config(RISKPO)).state_dict()
    continued = legacy_compute(verl_batch(seed=3), "riskrl_riskpo", RISKPO).batch["advantages"]

    rv.reset()  # the process state a new process starts with
    resumed_callback = build_checkpoint_callback(config)
    assert resumed_callback.restored_from == str(folder)
    resumed = legacy_compute(verl_batch(seed=3), "riskrl_riskpo", RISKPO).batch["advantages"]
    assert torch.equal(resumed, continued)  # same tracker values AND same bundle permutation RNG

    rv.reset()
    rv.load_state(str(folder))  # the manual route (legacy trainer)
    restored = rv.estimator_for("riskrl_riskpo", algo_config(RISKPO)).state_dict()
    assert restored["tracker"] == saved_state["tracker"]
    assert torch.equal(restored["generator"], saved_state["generator"])

    # A fresh start (no tracker file at default_local_dir) restores nothing.
    rv.reset()
    assert build_checkpoint_callback(checkpoint_config(tmp_path / "new")).restored_from is None
    assert build_checkpoint_callback(checkpoint_config(tmp_path, mode="disable")).restored_from is None
    assert build_checkpoint_callback(
        checkpoint_config(tmp_path, mode="resume_path", path=str(folder))
    ).restored_from == str(folder)


def test_save_without_estimators_writes_nothing(rv, tmp_path):
    assert rv.save_state(str(tmp_path)) is None
    assert not (tmp_path / rv.STATE_FILE).exists()


# --------------------------------------------------------------------------- bad configurations


@pytest.mark.parametrize(
    "options, message",
    [
        ({"alpah": 0.2}, r"unknown option\(s\) algorithm\.riskrl\.alpah .*accepted: .*algorithm\.riskrl\.alpha"),
        ({"alpha": 1.5}, r"algorithm\.riskrl\.alpha=1\.5: "),
        ({"alpha": 0.9, "beta": 0.5}, r"algorithm\.riskrl\.alpha=0\.9, algorithm\.riskrl\.beta=0\.5: "),
        ({"omega": -1.0}, r"algorithm\.riskrl\.omega=-1\.0: "),
        ({"bundle_size": 0}, r"algorithm\.riskrl\.bundle_size=0: "),
        ({"quantile_source": "median"}, r"algorithm\.riskrl\.quantile_source='median': "),
        ({"q_alpha": 0.1}, r"algorithm\.riskrl\.q_alpha=0\.1: .*only with quantile_source='fixed'"),
        ({"alpha": "high"}, r"algorithm\.riskrl\.alpha='high': "),
    ],
)
def test_bad_riskpo_options_name_the_config_key(rv, options, message):
    with pytest.raises(ValueError, match=message):
        legacy_compute(verl_batch(), "riskrl_riskpo", {**RISKPO, **options})


def test_bad_options_of_other_estimators(rv):
    with pytest.raises(ValueError, match=r"unknown option\(s\) algorithm\.riskrl\.alpha .*riskrl_rs_grpo"):
        legacy_compute(verl_batch(), "riskrl_rs_grpo", {"alpha": 0.2})
    with pytest.raises(ValueError, match=r"algorithm\.riskrl\.k=0: "):
        legacy_compute(verl_batch(), "riskrl_pkpo", {"k": 0})
    with pytest.raises(ValueError, match=r"algorithm\.riskrl must be a mapping"):
        from omegaconf import OmegaConf
        from verl.trainer.ppo.ray_trainer import compute_advantage

        compute_advantage(verl_batch(), "riskrl_riskpo", config=OmegaConf.create({"riskrl": 0.2}))


def test_bundle_size_not_dividing_prompts_names_train_batch_size(rv):
    with pytest.raises(ValueError, match=r"bundle_size=2 must divide .*P=3.*data\.train_batch_size"):
        legacy_compute(verl_batch(num_prompts=3), "riskrl_riskpo", RISKPO)


def test_unequal_groups_name_rollout_n(rv):
    batch = verl_batch()
    keep = torch.ones(len(batch), dtype=torch.bool)
    keep[0] = False  # one response of one prompt dropped (a filter or a failed rollout)
    batch = batch.select_idxs(keep)
    with pytest.raises(ValueError, match=r"group sizes \{3: 1, 4: 3\}.*actor_rollout_ref\.rollout\.n"):
        legacy_compute(batch, "riskrl_rs_grpo", {})


def test_single_response_groups_and_missing_uids(rv):
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    batch = verl_batch(n=1)
    with pytest.raises(ValueError, match=r"at least 2 responses.*actor_rollout_ref\.rollout\.n >= 2"):
        legacy_compute(batch, "riskrl_rs_grpo", {})
    fn = get_adv_estimator_fn("riskrl_rs_grpo")
    with pytest.raises(ValueError, match=r"need the prompt uid of every row"):
        fn(torch.zeros(4, 3), torch.ones(4, 3), config=None)
    with pytest.raises(ValueError, match=r"not a riskrl estimator"):
        rv.estimator_for("gae")


def test_resume_with_changed_options_or_without_state_is_an_error(rv, tmp_path):
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback

    callback = build_checkpoint_callback(checkpoint_config(tmp_path))
    legacy_compute(verl_batch(), "riskrl_riskpo", RISKPO)
    folder = save_like_verl(callback, tmp_path, 1)

    rv.reset()
    build_checkpoint_callback(checkpoint_config(tmp_path))
    with pytest.raises(ValueError, match=r"changed since the checkpoint.*trainer\.resume_mode=disable"):
        legacy_compute(verl_batch(), "riskrl_riskpo", {**RISKPO, "alpha": 0.3})

    rv.reset()
    (folder / rv.STATE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"riskrl_estimators\.pt does not exist.*RiskrlCheckpointCallback"):
        build_checkpoint_callback(checkpoint_config(tmp_path))
    # A run whose estimator is not riskrl's does not need the file.
    assert build_checkpoint_callback(checkpoint_config(tmp_path, estimator="grpo")).restored_from is None
    with pytest.raises(ValueError, match=r"trainer\.resume_from_path=.*global_step_N"):
        build_checkpoint_callback(checkpoint_config(tmp_path, mode="resume_path", path=str(tmp_path)))
    with pytest.raises(ValueError, match=r"trainer\.resume_mode='sometimes'"):
        build_checkpoint_callback(checkpoint_config(tmp_path, mode="sometimes"))


# --------------------------------------------------------------------------- fresh processes (slow)


def run_python(code, cwd, **env):
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow  # a fresh interpreter importing verl: ~5-20 s
def test_entry_point_discovery_in_a_fresh_process_without_riskrl_import(tmp_path):
    code = """
        import sys
        import verl
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        fn = get_adv_estimator_fn('riskrl_riskpo')
        print(fn.riskrl_name, 'llm.integrations.verl' in sys.modules)
    """
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["riskpo", "True"]
    # With plug-in discovery off, the names are absent and check() says so; the env-var route restores them.
    off = run_python(
        """
        import verl
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
        print('riskrl_riskpo' in ADV_ESTIMATOR_REGISTRY)
        """,
        tmp_path,
        VERL_USE_EXTERNAL_PLUGINS="none",
    )
    assert off.returncode == 0 and off.stdout.split()[-1] == "False", off.stderr[-3000:]
    fallback = run_python(
        code, tmp_path, VERL_USE_EXTERNAL_PLUGINS="none", VERL_USE_EXTERNAL_MODULES="llm.integrations.verl"
    )
    assert fallback.returncode == 0 and fallback.stdout.split()[-2:] == ["riskpo", "True"], fallback.stderr[-3000:]


@pytest.mark.slow  # two fresh interpreters importing verl
def test_checkpoint_round_trip_across_processes(rv, tmp_path):
    """save in one process -> resume in a NEW process -> the identical tracker and advantages."""
    step_code = """
        import json, sys, torch
        sys.path.insert(0, {tests!r})
        from test_verl_integration import legacy_compute, verl_batch, checkpoint_config, save_like_verl, RISKPO
        from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback
        from llm.integrations import verl as rv
        callback = build_checkpoint_callback(checkpoint_config({root!r}))
        for step in {steps}:
            adv = legacy_compute(verl_batch(seed=step), "riskrl_riskpo", RISKPO).batch["advantages"]
        if {save}:
            save_like_verl(callback, {root!r}, {steps}[-1] + 1)
        state = rv.estimator_for("riskrl_riskpo", checkpoint_config({root!r}).algorithm).state_dict()
        print(json.dumps({{"restored": callback.restored_from, "tracker": state["tracker"],
                          "adv": adv.tolist()}}))
    """
    tests = str(Path(__file__).parent)
    root = str(tmp_path / "ckpt")

    def run(steps, save):
        result = run_python(step_code.format(tests=tests, root=root, steps=list(steps), save=save), tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    first = run(range(3), save=True)
    assert first["restored"] is None
    resumed = run([3], save=False)
    assert resumed["restored"] == str(Path(root) / "global_step_3")
    # Reference: the same 4 steps without interruption, in this process.
    for step in range(4):
        adv = legacy_compute(verl_batch(seed=step), "riskrl_riskpo", RISKPO).batch["advantages"]
    state = rv.estimator_for("riskrl_riskpo", algo_config(RISKPO)).state_dict()
    assert resumed["tracker"] == state["tracker"]
    assert torch.equal(torch.tensor(resumed["adv"]), adv)


@pytest.mark.slow  # starts a local Ray cluster (one CPU) and a worker that imports verl
def test_discovery_inside_a_ray_actor(tmp_path):
    code = """
        import ray
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)

        @ray.remote(num_cpus=1)
        class TaskRunner:  # like verl's main_ppo TaskRunner: imports verl, never riskrl
            def run(self):
                import sys
                import verl
                from verl.trainer.ppo.core_algos import get_adv_estimator_fn
                return get_adv_estimator_fn("riskrl_rs_grpo").riskrl_name, "llm.integrations.verl" in sys.modules

        print(*ray.get(TaskRunner.remote().run.remote()))
        ray.shutdown()
    """
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["rs_grpo", "True"]


# --------------------------------------------------------------------------- the recipe (examples/verl)


def test_math_verify_score_is_the_papers_binary_reward(rv):
    assert rv.math_verify_score("gsm8k_train", "so the answer is \\boxed{72}.", "72") == 1.0
    assert rv.math_verify_score("gsm8k_train", "so the answer is \\boxed{\\frac{144}{2}}", "72") == 1.0
    assert rv.math_verify_score("gsm8k_train", "so the answer is \\boxed{71}", "72") == 0.0
    assert rv.math_verify_score("gsm8k_train", "the answer is 72", "72") == 0.0  # no \boxed{}: 0, as in llm.rewards


def test_prepare_data_writes_verl_parquet_rows(tmp_path):
    import pandas as pd

    sys.path.insert(0, str(ROOT / "examples" / "verl"))
    try:
        import prepare_data
    finally:
        sys.path.pop(0)
    written = prepare_data.main(["--train", "fixture:gsm8k", "--val", "fixture:math500", "--out", str(tmp_path)])
    train = pd.read_parquet(written["train"])
    from llm.data import load_dataset_examples

    examples = load_dataset_examples("fixture:gsm8k")
    assert len(train) == len(examples)
    row = train.iloc[0]
    assert set(train.columns) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["prompt"][0]["role"] == "user"
    assert row["prompt"][0]["content"] == examples[0].question + prepare_data.INSTRUCTION
    assert row["reward_model"]["ground_truth"] == examples[0].answer
    assert len(pd.read_parquet(written["val"])) == len(load_dataset_examples("fixture:math500"))


@pytest.mark.parametrize(
    "recipe, estimator, option",
    [("riskpo", "riskrl_riskpo", ("seed", 3)), ("rs_grpo", "riskrl_rs_grpo", ("beta", 4.0))],
)
def test_recipe_composes_with_verl_config_and_fits_the_bundles(rv, recipe, estimator, option):
    """The recipe file on top of verl's real ppo_trainer config, with the 2-node change applied."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "examples" / "verl"), version_base=None):
        cfg = compose(recipe, overrides=["trainer.nnodes=2", f"algorithm.riskrl.{option[0]}={option[1]}"])
    assert cfg.algorithm.adv_estimator == estimator
    assert cfg.trainer.checkpoint_callback_class == "llm.integrations.verl.RiskrlCheckpointCallback"
    assert cfg.trainer.nnodes == 2 and cfg.trainer.n_gpus_per_node == 8
    options = rv.options_from_config(estimator, cfg.algorithm)  # validates every algorithm.riskrl key
    assert options[option[0]] == option[1]  # a command-line override reaches the estimator
    bundle = rv.estimator_for(estimator, cfg.algorithm).bundle_size
    n, prompts = cfg.actor_rollout_ref.rollout.n, cfg.data.train_batch_size
    mini = cfg.actor_rollout_ref.actor.ppo_mini_batch_size
    assert prompts % bundle == 0  # the bundles tile the step's prompts
    assert prompts % mini == 0
    for world in (8, 16):  # one node, two nodes: verl splits the rows of a (mini-)batch over the GPUs
        assert (mini * n) % world == 0 and (prompts * n) % world == 0
