"""Loss pieces of llm/loss.py (the trainer side of theory/surrogate.py) against hand-computed numbers.

Tolerances: inputs are float64 and every expected value is a closed form of a
few operations, so 1e-12 relative error is ample (observed ~1e-16).
"""

import math

import pytest
import torch

from llm.loss import policy_loss
from theory.surrogate import aggregate

TOL = dict(rtol=1e-12, atol=1e-12)


def _log(x):
    return torch.log(torch.tensor(x, dtype=torch.float64))


def test_token_ratio_clipping_at_eps_low_and_eps_high():
    # Ratios 0.5, 1.0, 1.5 for a positive-advantage row and a negative one.
    old = torch.zeros(2, 3, dtype=torch.float64)
    new = _log([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]]).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0], dtype=torch.float64)
    mask = torch.ones(2, 3)
    loss, stats = policy_loss(new, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28)
    # A=+1: min(r, clip(r, 0.8, 1.28)) = 0.5, 1.0, 1.28.  A=-1: min(-r, -clip) = -0.8, -1.0, -1.5
    objective = [0.5, 1.0, 1.28, -0.8, -1.0, -1.5]
    assert float(loss.detach()) == pytest.approx(-sum(objective) / 6, rel=1e-12)
    # Clipped: (A>0, r=1.5 > 1.28) and (A<0, r=0.5 < 0.8): 2 of 6 tokens.
    assert float(stats["clip_frac"]) == pytest.approx(2 / 6, rel=1e-12)
    assert float(stats["ratio"]) == pytest.approx(3.0 / 3, rel=1e-12)
    # d(-rA/6)/dlogp = -A r/6 where unclipped; 0 where the clipped branch is active.
    loss.backward()
    expected_grad = torch.tensor([[-0.5, -1.0, 0.0], [0.0, 1.0, 1.5]], dtype=torch.float64) / 6
    torch.testing.assert_close(new.grad, expected_grad, **TOL)


def test_clip_higher_is_asymmetric():
    old = torch.zeros(1, 1, dtype=torch.float64)
    new = _log([[1.25]])
    loss_sym, _ = policy_loss(
        new, old, torch.ones(1, dtype=torch.float64), torch.ones(1, 1), clip_eps_low=0.2, clip_eps_high=0.2
    )
    loss_dapo, _ = policy_loss(
        new, old, torch.ones(1, dtype=torch.float64), torch.ones(1, 1), clip_eps_low=0.2, clip_eps_high=0.28
    )
    assert float(loss_sym) == pytest.approx(-1.2, rel=1e-12)  # clipped at 1 + 0.2
    assert float(loss_dapo) == pytest.approx(-1.25, rel=1e-12)  # inside 1 + 0.28


def test_aggregation_modes_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    # token-mean: (1+2+3 + 10+20) / 5 tokens
    assert float(aggregate(per_token, mask, "token-mean")) == pytest.approx(36 / 5, rel=1e-12)
    # seq-mean-token-mean: ((6/3) + (30/2)) / 2
    assert float(aggregate(per_token, mask, "seq-mean-token-mean")) == pytest.approx((2 + 15) / 2, rel=1e-12)
    # seq-mean-token-sum: (6 + 30) / 2
    assert float(aggregate(per_token, mask, "seq-mean-token-sum")) == pytest.approx(18, rel=1e-12)
    # Given denominators replace the local ones (micro-batches of a larger mini-batch).
    assert float(aggregate(per_token, mask, "token-mean", num_tokens=12.0)) == pytest.approx(3.0, rel=1e-12)
    assert float(aggregate(per_token, mask, "seq-mean-token-sum", num_sequences=4.0)) == pytest.approx(9.0, rel=1e-12)
    with pytest.raises(ValueError, match="loss_agg"):
        aggregate(per_token, mask, "sum")


def test_micro_batches_add_up_to_the_mini_batch_loss():
    torch.manual_seed(0)
    new, old = torch.randn(6, 5, dtype=torch.float64) * 0.1, torch.randn(6, 5, dtype=torch.float64) * 0.1
    adv = torch.randn(6, dtype=torch.float64)
    mask = (torch.rand(6, 5) > 0.3).long()
    mask[:, 0] = 1
    for agg in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        kwargs = dict(clip_eps_low=0.2, clip_eps_high=0.3, loss_agg=agg)
        whole, _ = policy_loss(new, old, adv, mask, **kwargs)
        parts = sum(
            policy_loss(
                new[i : i + 2],
                old[i : i + 2],
                adv[i : i + 2],
                mask[i : i + 2],
                num_tokens=float(mask.sum()),
                num_sequences=6.0,
                **kwargs,
            )[0]
            for i in (0, 2, 4)
        )
        torch.testing.assert_close(parts, whole, **TOL)


def test_sequence_ratio_is_geometric_mean_of_token_ratios():
    # Token ratios 2 and 0.5 (and a masked token that must not count): geometric mean = 1.
    old = torch.zeros(2, 3, dtype=torch.float64)
    new = _log([[2.0, 0.5, 7.0], [1.5, 1.5, 1.5]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, 1.0], dtype=torch.float64)
    loss, stats = policy_loss(new, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28, importance_ratio="sequence")
    # Row 0: s = sqrt(2*0.5) = 1 on both tokens; row 1: s = 1.5 clipped to 1.28 on 3 tokens.
    assert float(loss) == pytest.approx(-(1.0 * 2 + 1.28 * 3) / 5, rel=1e-12)
    assert float(stats["ratio"]) == pytest.approx((1.0 * 2 + 1.5 * 3) / 5, rel=1e-12)
    assert float(stats["clip_frac"]) == pytest.approx(3 / 5, rel=1e-12)
    # The token ratio on the same inputs differs (row 0 tokens clip separately).
    token_loss, _ = policy_loss(new, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28, importance_ratio="token")
    assert float(token_loss) == pytest.approx(-(1.28 + 0.5 + 1.28 * 3) / 5, rel=1e-12)


def test_kl_k3_value_and_coefficient():
    # d = log π_ref − log π = log 2 → k3 = 2 − log 2 − 1; d = −log 4 → 1/4 + log 4 − 1.
    logp = torch.zeros(1, 2, dtype=torch.float64)
    ref = _log([[2.0, 0.25]])
    k3 = [2 - math.log(2) - 1, 0.25 + math.log(4) - 1]
    loss, stats = policy_loss(
        logp,
        logp,
        torch.zeros(1, dtype=torch.float64),
        torch.ones(1, 2),
        clip_eps_low=0.2,
        clip_eps_high=0.2,
        ref_logprobs=ref,
        kl_coef=0.1,
    )
    assert float(stats["kl"]) == pytest.approx(sum(k3) / 2, rel=1e-12)
    assert float(loss) == pytest.approx(0.1 * sum(k3) / 2, rel=1e-12)
    # k3 >= 0 and is exactly 0 when the policies agree.
    _, same = policy_loss(
        logp,
        logp,
        torch.zeros(1, dtype=torch.float64),
        torch.ones(1, 2),
        clip_eps_low=0.2,
        clip_eps_high=0.2,
        ref_logprobs=logp,
        kl_coef=0.1,
    )
    assert float(same["kl"]) == 0.0


def test_bad_ratio_mode_is_an_error():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="importance_ratio"):
        policy_loss(x, x, torch.zeros(1), torch.ones(1, 1), clip_eps_low=0.2, clip_eps_high=0.2, importance_ratio="seq")
