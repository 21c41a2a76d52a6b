"""Risk measures of a reward distribution.

Every measure is written once, for a *discrete* distribution given by
``values`` and ``probs`` (shape ``(..., n)``, batch dims allowed). An empirical
sample is the discrete distribution with probability 1/n on each draw, so the
``empirical_*`` helpers only build that distribution and delegate.

Quantile convention (left-continuous inverse CDF, the one in RiskPO):

    F⁻¹(u) = inf{x : F(x) >= u},   u in (0, 1].

All tail measures are integrals of F⁻¹. For a discrete law F⁻¹ is a step
function taking value v_(i) on (C_(i-1), C_(i)] where C are the cumulative
probabilities of the sorted values, so

    ∫_a^b F⁻¹(u) du = Σ_i v_(i) · |(C_(i-1), C_(i)] ∩ (a, b]|

is exact, atoms at the quantiles included (binary and bundle rewards are
nothing but atoms).

References: RiskPO (Ren et al., 2025, arXiv:2510.00911) §3 for RVaR/MVaR;
RS-GRPO (Jiang et al., 2025, "Risk-Sensitive RL for Alleviating Exploration
Dilemmas in LLMs") for the entropic objective.
"""

from __future__ import annotations

import torch

from .checks import check_finite, check_levels, check_nonnegative, check_probability

Tensor = torch.Tensor

__all__ = [
    "mean",
    "quantile",
    "quantile_integral",
    "rvar",
    "cvar",
    "mvar",
    "tail_risks",
    "entropic",
    "shifted_log_mean_exp",
    "empirical_distribution",
    "empirical_mean",
    "empirical_quantile",
    "empirical_cvar",
    "empirical_rvar",
    "empirical_mvar",
    "empirical_entropic",
]


def _check_distribution(values: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
    check_finite("values", values)
    check_finite("probs", probs)
    if values.shape != probs.shape:
        raise ValueError(f"values {tuple(values.shape)} and probs {tuple(probs.shape)} must have the same shape")
    if values.dim() < 1 or values.shape[-1] < 1:
        raise ValueError("values must have a non-empty last dimension")
    if bool((probs < 0).any()):
        raise ValueError("probs must be non-negative")
    total = probs.sum(-1)
    if not torch.allclose(total, torch.ones_like(total), atol=1e-6 if probs.dtype == torch.float64 else 1e-4):
        raise ValueError(f"probs must sum to 1 along the last dim (got sums in [{total.min():.6g}, {total.max():.6g}])")
    dtype = torch.promote_types(values.dtype, probs.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return values.to(dtype), probs.to(dtype)


def _sorted_with_cdf(values: Tensor, probs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sorted values, their probabilities, and the CDF just below / at each value."""
    order = torch.argsort(values, dim=-1, stable=True)
    v = torch.gather(values, -1, order)
    p = torch.gather(probs, -1, order)
    # The CDF is accumulated in float64 whatever the input dtype: a float32
    # running sum of n copies of 1/n drifts by ~n·eps and would pick the wrong
    # order statistic for a few thousand samples.
    upper = torch.cumsum(p.to(torch.float64), dim=-1)
    lower = upper - p.to(torch.float64)
    return v, p, lower, upper


def mean(values: Tensor, probs: Tensor) -> Tensor:
    """E[R] = Σ_i p_i v_i. Shape (..., n) -> (...)."""
    values, probs = _check_distribution(values, probs)
    return (values * probs).sum(-1)


def quantile(values: Tensor, probs: Tensor, level: float) -> Tensor:
    """Value-at-Risk VaR_u(R) = F⁻¹(u) = inf{x : F(x) >= u}.

    ``level=0`` returns the smallest value with positive probability (the
    essential infimum), the limit of F⁻¹(u) as u -> 0⁺.
    """
    check_probability("level", level)
    values, probs = _check_distribution(values, probs)
    v, p, _, upper = _sorted_with_cdf(values, probs)
    if float(level) == 0.0:
        return torch.where(p > 0, v, torch.inf).min(-1).values
    # First sorted index whose cumulative probability reaches the level. A tiny
    # relative slack keeps level=k/n from skipping an atom through rounding.
    slack = 1e-12 if v.dtype == torch.float64 else 1e-6
    # Only support points qualify: a value of probability 0 is never F⁻¹(u).
    in_support = p > 0
    reached = (upper >= float(level) - slack) & in_support
    first_reached = torch.argmax(reached.to(torch.int8), dim=-1, keepdim=True)
    # probs may sum to slightly less than 1 (the check allows rounding); levels
    # in that gap belong to the largest support point, not to index 0.
    n = v.shape[-1]
    last_support = (n - 1) - torch.argmax(torch.flip(in_support, [-1]).to(torch.int8), dim=-1, keepdim=True)
    idx = torch.where(reached.any(-1, keepdim=True), first_reached, last_support)
    return torch.gather(v, -1, idx).squeeze(-1)


def quantile_integral(values: Tensor, probs: Tensor, lower_level: float, upper_level: float) -> Tensor:
    """∫_a^b F⁻¹(u) du for 0 <= a <= b <= 1, exact for discrete laws (atoms split by overlap)."""
    check_probability("lower_level", lower_level)
    check_probability("upper_level", upper_level)
    if float(lower_level) > float(upper_level):
        raise ValueError(f"lower_level={lower_level} must be <= upper_level={upper_level}")
    values, probs = _check_distribution(values, probs)
    v, _, lo, hi = _sorted_with_cdf(values, probs)
    overlap = (torch.clamp(hi, max=float(upper_level)) - torch.clamp(lo, min=float(lower_level))).clamp(min=0.0)
    return (v.to(torch.float64) * overlap).sum(-1).to(v.dtype)


def rvar(values: Tensor, probs: Tensor, alpha: float, beta: float) -> Tensor:
    """Range Value-at-Risk RVaR_{α:β}(R) = (1/(β−α)) ∫_α^β F⁻¹(u) du,  0 <= α < β <= 1.

    RVaR_{0:α} is CVaR_α (lower tail); RVaR_{0:1} is the mean. (RiskPO, Eq. 3.)
    """
    check_levels(alpha, beta)
    return _band_mean(quantile_integral(values, probs, alpha, beta), alpha, beta)


def cvar(values: Tensor, probs: Tensor, alpha: float) -> Tensor:
    """Lower-tail Conditional Value-at-Risk CVaR_α(R) = (1/α) ∫_0^α F⁻¹(u) du, α in (0, 1]."""
    check_probability("alpha", alpha, open_low=True)
    return rvar(values, probs, 0.0, alpha)


def mvar(values: Tensor, probs: Tensor, alpha: float, beta: float, omega: float) -> Tensor:
    """Mixed Value-at-Risk (RiskPO, Eq. 4):

        MVaR^ω_{α:β}(R) = (1+ω)·α·RVaR_{0:α}(R) + (β−α)·RVaR_{α:β}(R)
                        = (1+ω) ∫_0^α F⁻¹ + ∫_α^β F⁻¹.

    The lower tail gets the extra weight ω >= 0; rewards above the β-quantile
    do not count at all.
    """
    check_levels(alpha, beta)
    check_nonnegative("omega", omega)
    lower = quantile_integral(values, probs, 0.0, alpha)
    band = quantile_integral(values, probs, alpha, beta)
    return _mixed(lower, band, omega)


def _band_mean(integral: Tensor, lower_level: float, upper_level: float) -> Tensor:
    """RVaR from its quantile integral: (1/(b−a)) ∫_a^b F⁻¹ (shared by ``rvar``/``cvar`` and ``tail_risks``)."""
    return integral / (float(upper_level) - float(lower_level))


def _mixed(lower: Tensor, band: Tensor, omega: float) -> Tensor:
    """MVaR from its two quantile integrals: (1+ω) ∫_0^α F⁻¹ + ∫_α^β F⁻¹ (shared by ``mvar`` and ``tail_risks``)."""
    return (1.0 + float(omega)) * lower + band


def tail_risks(values: Tensor, probs: Tensor, alpha: float, beta: float, omega: float) -> tuple[Tensor, Tensor, Tensor]:
    """(CVaR_α, RVaR_{α:β}, MVaR^ω_{α:β}) of one law from its two quantile integrals ∫_0^α F⁻¹ and
    ∫_α^β F⁻¹: bit for bit ``cvar``, ``rvar`` and ``mvar`` (the same operations), at half their cost
    when all three are wanted (a simulator logging them every step). α > 0 (CVaR_0 is undefined)."""
    check_probability("alpha", alpha, open_low=True)
    check_levels(alpha, beta)
    check_nonnegative("omega", omega)
    lower = quantile_integral(values, probs, 0.0, alpha)
    band = quantile_integral(values, probs, alpha, beta)
    return _band_mean(lower, 0.0, alpha), _band_mean(band, alpha, beta), _mixed(lower, band, omega)


def entropic(values: Tensor, probs: Tensor, beta: float) -> Tensor:
    """Entropic risk / exponential utility (RS-GRPO objective):

        J_β(R) = (1/β) log E[e^{βR}],   β != 0;   J_0(R) = E[R] (the β -> 0 limit).

    β > 0 is risk-seeking (tends to max R as β -> ∞), β < 0 risk-averse
    (tends to min R). Computed with logsumexp so large |β| cannot overflow.
    """
    values, probs = _check_distribution(values, probs)
    beta = float(beta)
    if beta != beta or abs(beta) == float("inf"):
        raise ValueError(f"beta={beta} must be finite")
    if beta == 0.0:
        return (values * probs).sum(-1)
    shift, log_mean_exp = shifted_log_mean_exp(values, probs, beta)
    return (shift + log_mean_exp / beta).squeeze(-1).to(values.dtype)


def shifted_log_mean_exp(values: Tensor, probs: Tensor, beta: float | Tensor) -> tuple[Tensor, Tensor]:
    """(c, log E[e^{β(R − c)}]) with c = max R (β > 0) or min R (β < 0) over the support, float64, keepdim.

    So (1/β) log E e^{βR} = c + log E[e^{β(R−c)}]/β. Every exponent β(R − c) is
    <= 0 (no overflow at any β), and the log-moment is taken two ways:

        log1p(E[expm1(β(R−c))])   when the mean is near 1 (small |β|·spread):
                                  expm1 keeps the O(β) digits a plain
                                  log-sum-exp rounds away, so the β -> 0 limit
                                  is the mean to float precision;
        logsumexp(β(R−c) + log p) otherwise (large |β|, no cancellation).

    Both divide by Σp, so the rounding the sum-to-1 check tolerates is not
    amplified by 1/β. Shared by ``entropic`` and the RS-GRPO population advantage.
    """
    v = values.to(torch.float64)
    p = probs.to(torch.float64)
    in_support = p > 0
    # ``beta`` may be a tensor broadcasting against values[..., :1] (one β per law).
    beta = torch.as_tensor(beta, dtype=torch.float64)
    top = torch.where(in_support, v, -torch.inf).amax(-1, keepdim=True)
    bottom = torch.where(in_support, v, torch.inf).amin(-1, keepdim=True)
    shift = torch.where(beta > 0, top, bottom)
    # Off-support exponents may be positive; masked so that 0·inf never appears.
    exponent = torch.where(in_support, beta * (v - shift), torch.zeros_like(v))
    total = p.sum(-1, keepdim=True)
    mean_minus_one = (p * torch.expm1(exponent)).sum(-1, keepdim=True) / total
    # log of 1 (not 0) off the support, so autograd w.r.t. probs sees no 0·inf.
    log_p = torch.where(in_support, torch.where(in_support, p, torch.ones_like(p)).log(), -torch.inf)
    direct = torch.logsumexp(exponent + log_p, dim=-1, keepdim=True) - total.log()
    log_mean_exp = torch.where(mean_minus_one > -0.5, torch.log1p(mean_minus_one), direct)
    return shift, log_mean_exp


def empirical_distribution(samples: Tensor) -> tuple[Tensor, Tensor]:
    """The empirical law of ``samples`` (..., n): each draw gets probability 1/n."""
    check_finite("samples", samples)
    if samples.dim() < 1 or samples.shape[-1] < 1:
        raise ValueError("samples must have a non-empty last dimension")
    if not samples.is_floating_point():
        samples = samples.to(torch.get_default_dtype())
    probs = torch.full_like(samples, 1.0 / samples.shape[-1])
    return samples, probs


def empirical_mean(samples: Tensor) -> Tensor:
    return mean(*empirical_distribution(samples))


def empirical_quantile(samples: Tensor, level: float) -> Tensor:
    """F_n⁻¹(u) = x_(⌈n·u⌉), the order statistic (no interpolation)."""
    return quantile(*empirical_distribution(samples), level)


def empirical_cvar(samples: Tensor, alpha: float) -> Tensor:
    return cvar(*empirical_distribution(samples), alpha)


def empirical_rvar(samples: Tensor, alpha: float, beta: float) -> Tensor:
    return rvar(*empirical_distribution(samples), alpha, beta)


def empirical_mvar(samples: Tensor, alpha: float, beta: float, omega: float) -> Tensor:
    return mvar(*empirical_distribution(samples), alpha, beta, omega)


def empirical_entropic(samples: Tensor, beta: float) -> Tensor:
    return entropic(*empirical_distribution(samples), beta)
