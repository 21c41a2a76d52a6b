"""2-process CPU (gloo) training: ranks end a step with identical parameters and quantiles.

Runs ``ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2``
(torchrun underneath, gloo backend; plain ``--cpu`` would start ONE process
unless mpirun is used) on a tiny random model. Each
rank samples different prompts; rewards are gathered into the global (P, G)
matrix, so bundles span ranks and every rank feeds its RiskPO quantile tracker
the same scores. Each rank dumps a SHA-256 of its parameters and its tracker
state; they must be bit-identical, and the parameters must have moved.
"""

import json
import textwrap

import pytest
from two_process_launch import launch_two_cpu_processes

DRIVER = textwrap.dedent("""
    import hashlib, json, os, sys
    from llm.model import SMOLLM2, build_tiny_model, load_tokenizer
    from llm.train import TrainConfig, train

    def digest(model):
        h = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode()); h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    out = sys.argv[1]
    cfg = TrainConfig.from_args(sys.argv[2:])
    initial = digest(build_tiny_model(load_tokenizer(SMOLLM2), seed=cfg.seed))
    result = train(cfg)
    rank = int(os.environ["RANK"])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"num_processes": result.num_processes, "initial": initial, "final": digest(result.model),
                   "tracker": result.estimator.tracker.state_dict(), "metrics": result.metrics}, f)
""")


@pytest.mark.slow  # end to end (a whole training run or process launch): the default tier stays <= 90 s
@pytest.mark.timeout(600)
def test_two_ranks_stay_identical(tmp_path):
    run_dir = tmp_path / "run"
    proc = launch_two_cpu_processes(
        DRIVER,
        tmp_path,
        29517,
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
            "--mini_batches",
            "2",
            # one row per forward/backward: the chunks of a micro-batch accumulate without all-reducing
            # (accelerator.no_sync) and only the last one syncs, so ranks must still end identical
            "--micro_batch_max_tokens",
            "1",
            "--lr",
            "1e-3",
            "--report_to",
            "none",
            "--save_model",
            "false",
            "--output_dir",
            str(run_dir),
        ],
        timeout=570,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["num_processes"] == ranks[1]["num_processes"] == 2, "not a 2-process run"
    assert ranks[0]["initial"] == ranks[1]["initial"]
    assert ranks[0]["final"] == ranks[1]["final"], "parameters diverged across ranks"
    assert ranks[0]["final"] != ranks[0]["initial"], "no update happened"
    assert ranks[0]["tracker"] == ranks[1]["tracker"], "quantile trackers diverged across ranks"
    for key in ("q_alpha", "q_beta", "reward_mean", "loss", "adv_mean"):
        assert ranks[0]["metrics"][key] == ranks[1]["metrics"][key], key
    assert ranks[0]["tracker"]["values"] == [ranks[0]["metrics"]["q_alpha"], ranks[0]["metrics"]["q_beta"]]
    # The checkpoint holds one RNG state per rank and resumes only with 2 processes.
    import torch

    state = torch.load(run_dir / "checkpoints" / "step-00000002" / "trainer_state.pt", weights_only=False)
    assert len(state["rng"]) == 2 and state["sampler"]["position"] == 8
