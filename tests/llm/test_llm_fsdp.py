"""FSDP2 on CPU: 2 gloo processes train a sharded tiny model, save, resume, and match the uninterrupted run.

accelerate builds FSDP only on accelerators (on CPU it falls back to DDP), so
``fsdp: true`` makes the trainer apply torch's ``fully_shard`` itself; the run
is launched exactly like the DDP one (``ACCELERATE_USE_CPU=true accelerate
launch --multi_gpu``). One launch runs, in the same two processes:

1. the uninterrupted run: 2 steps, checkpoint after each (sharded optimizer state);
2. a run resumed from step 1's checkpoint (weights from model/, optimizer from its shards);
3. the same 2 steps unsharded (DDP), as an independent reference.

Each step samples with HF generate under FSDP (full parameters gathered for
generation), uses 2 PPO epochs × 2 mini-batches (so Adam's state matters for
the resumed step) and a KL reference sharded like the policy.
"""

import json
import textwrap

import pytest
import torch
from two_process_launch import launch_two_cpu_processes

DRIVER = textwrap.dedent("""
    import json, os, sys
    import torch
    from llm.sharding import full_state_dict, is_sharded
    from llm.train import TrainConfig, train

    out, args = sys.argv[1], sys.argv[2:]
    def run(name, *extra):
        result = train(TrainConfig.from_args(args + ["--output_dir", os.path.join(out, name), *extra]))
        weights = full_state_dict(result.model)  # collective under FSDP; full tensors on rank 0
        if int(os.environ["RANK"]) == 0:
            torch.save(weights, os.path.join(out, name + ".pt"))
        return {"sharded": is_sharded(result.model), "metrics": result.metrics,
                "tracker": result.estimator.tracker.state_dict()}

    report = {"full": run("full"),
              "resumed": run("resumed", "--resume", os.path.join(out, "full", "checkpoints", "step-00000001")),
              "ddp": run("ddp", "--fsdp", "false")}
    with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
        json.dump(report, f)
""")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fsdp_two_processes_resume_exactly_and_match_ddp(tmp_path):
    proc = launch_two_cpu_processes(
        DRIVER,
        tmp_path,
        29523,
        [
            "--model",
            "tiny-random",
            "--dataset",
            "fixture:gsm8k",
            "--reward_workers",
            "0",
            "--rewards",
            "[[test_llm_train_stubs:crc_reward, 1.0]]",
            "--estimator",
            "riskpo",
            "--estimator_params",
            "{alpha: 0.2, beta: 0.8, omega: 0.5, bundle_size: 2}",
            "--prompts_per_step",
            "4",
            "--group_size",
            "4",
            "--max_new_tokens",
            "8",
            "--steps",
            "2",
            "--save_every",
            "1",
            "--ppo_epochs",
            "2",
            "--mini_batches",
            "2",
            "--kl_coef",
            "0.05",
            "--lr",
            "1e-3",
            "--report_to",
            "none",
            "--save_model",
            "false",
            "--fsdp",
            "true",
            "--tied_embedding_grad_in_place",  # FSDP2's gradients are dense shards; the DDP run matches it
            "false",
        ],
        timeout=870,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for report in ranks:
        assert report["full"]["sharded"] and report["resumed"]["sharded"] and not report["ddp"]["sharded"]

    # Resume is exact: same CPU float32 arithmetic in the same order, so equality, not closeness.
    full, resumed = ranks[0]["full"], ranks[0]["resumed"]
    for key in ("loss", "reward_mean", "q_alpha", "q_beta", "kl", "clip_frac", "entropy", "grad_norm", "cov_logp_adv"):
        assert full["metrics"][key] == resumed["metrics"][key], key
    assert full["tracker"] == resumed["tracker"]
    w_full, w_resumed, w_ddp = (torch.load(tmp_path / f"{n}.pt") for n in ("full", "resumed", "ddp"))
    assert w_full.keys() == w_resumed.keys() == w_ddp.keys()
    for name in w_full:
        assert torch.equal(w_full[name], w_resumed[name]), name

    # Both ranks log the same (global) metrics.
    assert ranks[0]["full"]["metrics"]["loss"] == ranks[1]["full"]["metrics"]["loss"]

    # FSDP computes the same update as DDP up to float32 summation order (reduce-scatter vs all-reduce;
    # with 2 ranks the weights came out identical here). 1e-4 absolute leaves room for other reduction
    # orders, while a wrong gradient scale (e.g. summed instead of averaged over ranks) moves Adam's
    # weights by ~lr = 1e-3 per step, 8 steps here.
    ddp = ranks[0]["ddp"]["metrics"]
    assert ddp["reward_mean"] == full["metrics"]["reward_mean"]  # same samples: generation saw the full weights
    for name in w_full:
        torch.testing.assert_close(w_full[name], w_ddp[name], rtol=0, atol=1e-4)

    # The checkpoint: weights once (model/), optimizer state as one shard per process, none in trainer_state.pt.
    step_dir = tmp_path / "full" / "checkpoints" / "step-00000002"
    assert sorted(p.name for p in (step_dir / "optimizer").glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    state = torch.load(step_dir / "trainer_state.pt", weights_only=False)
    assert state["optimizer"] is None and len(state["rng"]) == 2
