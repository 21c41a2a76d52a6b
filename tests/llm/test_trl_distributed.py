"""2-process CPU (gloo) RiskGRPOTrainer run: bundles span ranks, trackers stay identical.

Launched like tests/llm/test_llm_distributed.py (``accelerate launch --multi_gpu
--num_processes 2`` with ACCELERATE_USE_CPU=true: torchrun + gloo). Each rank
scores its own completions; every rank records the rewards its reward function
returned and the advantages the trainer handed to TRL. The test rebuilds each
global reward matrix as TRL gathers it (rank 0's rows, then rank 1's), runs an
independent estimator on it, and checks that every rank trained with exactly
its slice and that both ranks end with bit-identical quantile trackers.
"""

import json
import textwrap

import pytest
import torch

pytest.importorskip("trl")
try:
    import llm.integrations.trl  # noqa: F401
except ImportError as error:
    pytest.skip(str(error), allow_module_level=True)

from two_process_launch import launch_two_cpu_processes

DRIVER = textwrap.dedent("""
    import json, os, sys
    from test_trl_integration import RISKPO, RecordingReward, make_trainer, tiny_config
    from llm.integrations.trl import RiskGRPOTrainer

    class Trainer(RiskGRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            self.returned = getattr(self, "returned", []) + [output["advantages"].tolist()]
            return output

    out = sys.argv[1]
    reward = RecordingReward()
    # per rank 4 completions x 2 steps per generation; globally 16 = P 4 x G 4, two bundles of 2
    args = tiny_config(os.path.join(out, "run"), per_device_train_batch_size=4, steps_per_generation=2, max_steps=4)
    trainer = make_trainer(args, reward, Trainer)
    trainer.train()
    rank = int(os.environ["RANK"])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world": trainer.accelerator.num_processes, "rewards": [values for _, values in reward.calls],
                   "advantages": trainer.returned, "tracker": trainer.estimator.state_dict()["tracker"],
                   "q_alpha": [e["riskrl/q_alpha"] for e in trainer.state.log_history if "riskrl/q_alpha" in e]}, f)
""")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_ranks_share_bundles_and_quantiles(tmp_path):
    from test_trl_integration import RISKPO

    from theory import get_estimator

    proc = launch_two_cpu_processes(DRIVER, tmp_path, 29531, [], timeout=870)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2, "not a 2-process run"
    assert ranks[0]["tracker"] == ranks[1]["tracker"], "quantile trackers diverged across ranks"
    assert ranks[0]["q_alpha"] == ranks[1]["q_alpha"] and len(ranks[0]["q_alpha"]) == 2
    assert ranks[0]["tracker"]["step"] == 1  # two generation batches: initialise, then one update

    reference = get_estimator("riskpo", **RISKPO)
    for call in range(2):
        local = [torch.tensor(ranks[r]["rewards"][call], dtype=torch.float32) for r in (0, 1)]
        assert local[0].numel() == local[1].numel() == 8
        assert not torch.equal(local[0], local[1]), "ranks scored the same completions"
        matrix = torch.cat(local).double().view(4, 4)  # gathered rank-major, G consecutive rows per prompt
        expected = reference(matrix).advantages.reshape(-1).float()
        for rank in (0, 1):
            got = torch.tensor(ranks[rank]["advantages"][call], dtype=torch.float32)
            assert torch.equal(got, expected[8 * rank : 8 * (rank + 1)]), f"rank {rank} batch {call}"
    assert ranks[0]["tracker"] == reference.state_dict()["tracker"]
    # Bundles of 2 prompts out of 4 are drawn at random across the global batch; a per-rank estimator
    # (local 2x4 matrices, one bundle each) would have given different quantiles.
    per_rank = get_estimator("riskpo", **RISKPO)
    for call in range(2):
        per_rank(torch.tensor(ranks[0]["rewards"][call], dtype=torch.float32).double().view(2, 4))
    assert per_rank.state_dict()["tracker"]["values"] != ranks[0]["tracker"]["values"]
