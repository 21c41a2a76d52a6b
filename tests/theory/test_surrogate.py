"""theory/surrogate.py against hand-computed numbers and autograd.

Tolerances: inputs are float64 and every expected value is a closed form of a
handful of operations, so 1e-12 is ample (observed ~1e-16). The gradient check
uses torch.autograd.gradcheck's central differences (eps=1e-6, float64), whose
truncation error is O(eps²)·|f'''| ≈ 1e-12, well under its atol of 1e-5.
"""

import math

import pytest
import torch

from theory.surrogate import aggregate, clipped_surrogate, importance_log_ratio, k3_kl, truncated_importance_weights

TOL = dict(rtol=1e-12, atol=1e-12)
F64 = torch.float64


def _log(values):
    return torch.log(torch.tensor(values, dtype=F64))


def test_token_ratio_per_token_loss_and_clip_statistics_by_hand():
    old = torch.zeros(2, 3, dtype=F64)
    new = _log([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]])
    adv = torch.tensor([2.0, -1.0], dtype=F64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = clipped_surrogate(new, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28)
    # A=+2: -min(2r, 2 clip(r, .8, 1.28)) = -1.0, -2.0, -2.56.  A=-1: -min(-r, -clip(r)) = 0.8, 1.0, (masked) 0.
    expected = torch.tensor([[-1.0, -2.0, -2.56], [0.8, 1.0, 0.0]], dtype=F64)
    torch.testing.assert_close(out.per_token_loss, expected, **TOL)
    torch.testing.assert_close(out.ratio, torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]], dtype=F64), **TOL)
    # Clipped (zero gradient): A>0 with r=1.5>1.28; A<0 with r=0.5<0.8. The masked token does not count.
    assert out.is_clipped.tolist() == [[False, False, True], [True, False, False]]
    assert float(out.clip_frac) == pytest.approx(2 / 5, rel=1e-12)
    assert float(out.ratio_mean) == pytest.approx((0.5 + 1 + 1.5 + 0.5 + 1) / 5, rel=1e-12)


def test_sequence_ratio_is_masked_geometric_mean_shared_by_the_row():
    old = _log([[0.5, 0.5, 0.1], [1.0, 1.0, 1.0]])
    new = _log([[1.0, 0.25, 0.9], [1.1, 1.1, 1.1]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    log_s = importance_log_ratio(new, old, mask, "sequence")
    # Row 0: token ratios 2 and 0.5 (the masked 9 is ignored) -> s = sqrt(1) = 1. Row 1: s = 1.1.
    torch.testing.assert_close(log_s, torch.tensor([[0.0] * 3, [math.log(1.1)] * 3], dtype=F64), **TOL)
    out = clipped_surrogate(
        new,
        old,
        torch.tensor([1.0, 1.0], dtype=F64),
        mask,
        clip_eps_low=0.2,
        clip_eps_high=0.05,
        importance_ratio="sequence",
    )
    torch.testing.assert_close(out.per_token_loss, torch.tensor([[-1.0, -1.0, 0.0], [-1.05] * 3], dtype=F64), **TOL)
    assert float(out.clip_frac) == pytest.approx(3 / 5, rel=1e-12)


def test_gradient_closed_form_token_ratio():
    # ∂L_it/∂ℓ_it = −A_i w_it m_it where unclipped, 0 where clipped.
    old = torch.zeros(2, 3, dtype=F64)
    new = _log([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]]).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    out = clipped_surrogate(new, old, adv, torch.ones(2, 3), clip_eps_low=0.2, clip_eps_high=0.28)
    out.per_token_loss.sum().backward()
    torch.testing.assert_close(new.grad, torch.tensor([[-0.5, -1.0, 0.0], [0.0, 1.0, 1.5]], dtype=F64), **TOL)


@pytest.mark.parametrize("importance_ratio", ["token", "sequence"])
def test_autograd_gradient_matches_finite_differences(importance_ratio):
    gen = torch.Generator().manual_seed(3)
    old = -torch.rand(3, 4, generator=gen, dtype=F64)
    # Ratios within exp(±0.05) keep every token away from the clip kinks at 0.8 / 1.3, where the
    # surrogate is not differentiable and central differences would straddle the kink.
    new = (old + 0.1 * (torch.rand(3, 4, generator=gen, dtype=F64) - 0.5)).requires_grad_(True)
    adv = torch.tensor([1.5, -0.7, 0.3], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])

    def objective(x):
        out = clipped_surrogate(
            x, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.3, importance_ratio=importance_ratio
        )
        return aggregate(out.per_token_loss, mask, "seq-mean-token-mean")

    assert torch.autograd.gradcheck(objective, (new,), eps=1e-6, atol=1e-5)


def test_clipped_tokens_get_exactly_zero_gradient_and_sequence_gradient_spreads_by_length():
    old = torch.zeros(1, 2, dtype=F64)
    new = _log([[2.0, 2.0]]).requires_grad_(True)  # s = 2 > 1 + 0.2 with A > 0: clipped
    out = clipped_surrogate(new, old, torch.ones(1, dtype=F64), torch.ones(1, 2), importance_ratio="sequence")
    out.per_token_loss.sum().backward()
    assert new.grad.abs().max().item() == 0.0
    # Unclipped sequence ratio s = 1: L = −2 s A (two tokens), ∂s/∂ℓ_t = s/2 → grad −A = −1 per token.
    new = torch.zeros(1, 2, dtype=F64, requires_grad=True)
    clipped_surrogate(
        new, old, torch.ones(1, dtype=F64), torch.ones(1, 2), importance_ratio="sequence"
    ).per_token_loss.sum().backward()
    torch.testing.assert_close(new.grad, torch.full((1, 2), -1.0, dtype=F64), **TOL)


def test_aggregate_and_k3_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 0.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert float(aggregate(per_token, mask, "token-mean")) == pytest.approx(36 / 5, rel=1e-12)
    assert float(aggregate(per_token, mask, "seq-mean-token-mean")) == pytest.approx((2 + 15) / 2, rel=1e-12)
    assert float(aggregate(per_token, mask, "seq-mean-token-sum")) == pytest.approx(18, rel=1e-12)
    k3 = k3_kl(torch.zeros(1, 2, dtype=F64), _log([[2.0, 0.25]]))
    torch.testing.assert_close(k3, torch.tensor([[2 - math.log(2) - 1, 0.25 + math.log(4) - 1]], dtype=F64), **TOL)


def test_truncated_importance_weights_by_hand():
    train = _log([[0.5, 0.3, 0.2], [0.9, 0.1, 0.5]])
    rollout = _log([[0.25, 0.3, 0.4], [0.3, 0.1, 0.5]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = truncated_importance_weights(train, rollout, mask, cap=2.0)
    # ρ = 2, 1, 0.5 / 3 (capped at 2), 1, masked.
    torch.testing.assert_close(out.weights, torch.tensor([[2.0, 1.0, 0.5], [2.0, 1.0, 0.0]], dtype=F64), **TOL)
    assert float(out.max_ratio) == pytest.approx(3.0, rel=1e-6)
    assert float(out.truncated_frac) == pytest.approx(1 / 5, rel=1e-6)
    assert float(out.mean_abs_log_diff) == pytest.approx((2 * math.log(2) + math.log(3)) / 5, rel=1e-6)
    with pytest.raises(ValueError, match="tis_cap"):
        truncated_importance_weights(train, rollout, mask, cap=0.5)


def test_bad_input_names_the_field():
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="importance_ratio"):
        clipped_surrogate(x, x, torch.zeros(1), torch.ones(1, 2), importance_ratio="seq")
    with pytest.raises(ValueError, match="clip_eps_low"):
        clipped_surrogate(x, x, torch.zeros(1), torch.ones(1, 2), clip_eps_low=1.0)
    with pytest.raises(ValueError, match="clip_eps_high"):
        clipped_surrogate(x, x, torch.zeros(1), torch.ones(1, 2), clip_eps_high=-0.1)
    with pytest.raises(ValueError, match="advantages"):
        clipped_surrogate(x, x, torch.zeros(2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="same"):
        clipped_surrogate(x, torch.zeros(1, 3), torch.zeros(1), torch.ones(1, 2))
    with pytest.raises(ValueError, match="loss_agg"):
        aggregate(x, torch.ones(1, 2), "sum")
