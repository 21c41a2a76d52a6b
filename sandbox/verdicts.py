"""Verdicts of the simulation claims: intervals on differences across training seeds, and the rule.

The rule is fixed here, before any run, and every simulation claim uses it:

* a **comparison** is one paired difference ``method − baseline`` of one quantity (final entropy,
  pass@k at step T, ...), one value per training seed (both runs of a seed share the simulator's
  random numbers, so the difference is paired);
* its 95 % interval is the Student-t interval on the mean of the per-seed differences
  (``t_interval``);
* its verdict is ``holds`` when the interval lies entirely on the claimed side of 0, ``fails``
  when it lies entirely on the other side, ``not resolved`` otherwise (``comparison_verdict``);
* a claim's verdict (``claim_verdict``) over its **primary** comparisons (framing
  ``"equal_steps"``): ``fails`` if any one fails, ``holds`` if every one holds, else ``not
  resolved``. Secondary framings (matched pass@1, run averages) are reported and never enter;
* a **negative control** (the negated advantage, the bundle-mean objective in place of MVaR) is run
  through the same comparisons; ``control_report`` says whether the check can tell the method from
  its controls: it can only when every control's verdict differs from the method's.

Why a t interval and not a bootstrap: with n = 8 seeds the percentile bootstrap of the mean
under-covers (its interval is roughly the normal interval with the sample sd in the ddof = 0 form
and z = 1.96 in place of t₇ = 2.36, so it is ~20-30 % too narrow and its nominal 95 % is ~88 % in
practice), while the t interval is exact for normal differences and robust for the moderate
skew of averaged simulator metrics. ``bootstrap_interval`` is kept for reference and tests only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

__all__ = [
    "HOLDS",
    "FAILS",
    "NOT_RESOLVED",
    "PRIMARY",
    "LEVEL",
    "Verdict",
    "Comparison",
    "t_interval",
    "bootstrap_interval",
    "comparison_verdict",
    "compare",
    "claim_verdict",
    "control_report",
    "paired_comparisons",
    "decision",
    "decision_text",
]

HOLDS = "holds"
FAILS = "fails"
NOT_RESOLVED = "not resolved"
Verdict = Literal["holds", "fails", "not resolved"]
#: the framing of the comparisons that set a claim's verdict
PRIMARY = "equal_steps"
#: two-sided confidence level of every interval
LEVEL = 0.95
Side = Literal["greater", "less"]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One paired comparison ``method − baseline`` of ``quantity`` across training seeds.

    ``side`` is the claimed sign of the difference ("greater": the paper says method > baseline).
    ``framing`` is ``"equal_steps"`` for the primary comparisons; anything else is secondary.
    """

    method: str
    baseline: str
    quantity: str
    framing: str
    difference: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    side: Side = "greater"
    seeds: int = 0
    wins: int = 0  # seeds where the difference has the claimed sign

    @property
    def primary(self) -> bool:
        return self.framing == PRIMARY

    def to_dict(self) -> dict:
        """JSON-ready (floats that are not finite become None)."""
        out = dataclasses.asdict(self)
        out["primary"] = self.primary
        for key in ("difference", "ci_low", "ci_high"):
            out[key] = out[key] if math.isfinite(out[key]) else None
        return out

    def text(self) -> str:
        """'riskpo − dr_grpo, final entropy: +0.012 [−0.003, +0.027] (6/8 seeds) → not resolved'"""
        return (
            f"{self.method} − {self.baseline}, {self.quantity}: {self.difference:+.3f} "
            f"[{self.ci_low:+.3f}, {self.ci_high:+.3f}] ({self.wins}/{self.seeds} seeds) → {self.verdict}"
        )


def _differences(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise ValueError(f"differences: need at least 2 seeds for an interval, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError(f"differences: contains non-finite values {x[~np.isfinite(x)].tolist()}")
    return x


def t_interval(differences: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval mean ± t_{n−1, (1+level)/2} · s/√n (s with ddof = 1)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} must lie in (0, 1)")
    from scipy import stats  # ~1 s of imports, needed only here: not paid by ``import sandbox``

    x = _differences(differences)
    n = x.size
    mean = float(x.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def bootstrap_interval(
    differences: Sequence[float] | np.ndarray, level: float = LEVEL, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean. Not used for verdicts (see module docstring)."""
    x = _differences(differences)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(1)
    low, high = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return float(x.mean()), float(low), float(high)


def comparison_verdict(ci_low: float, ci_high: float, side: Side = "greater") -> Verdict:
    """The rule: interval wholly on the claimed side of 0 → holds; wholly on the other → fails; else not resolved."""
    if side not in ("greater", "less"):
        raise ValueError(f"side={side!r} must be 'greater' or 'less'")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)) or ci_low > ci_high:
        raise ValueError(f"interval [{ci_low}, {ci_high}] must be finite with ci_low <= ci_high")
    above, below = ci_low > 0.0, ci_high < 0.0
    if side == "less":
        above, below = below, above
    return HOLDS if above else FAILS if below else NOT_RESOLVED


def compare(
    method: str,
    baseline: str,
    quantity: str,
    differences: Sequence[float] | np.ndarray,
    *,
    framing: str = PRIMARY,
    side: Side = "greater",
    level: float = LEVEL,
) -> Comparison:
    """A ``Comparison`` from the per-seed paired differences ``method − baseline``."""
    x = _differences(differences)
    mean, low, high = t_interval(x, level)
    wins = int((x > 0).sum() if side == "greater" else (x < 0).sum())
    return Comparison(
        method, baseline, quantity, framing, mean, low, high, comparison_verdict(low, high, side), side, x.size, wins
    )


def claim_verdict(comparisons: Iterable[Comparison]) -> Verdict:
    """fails if a primary comparison fails; holds if every primary one holds; else not resolved."""
    primary = [c for c in comparisons if c.primary]
    if not primary:
        raise ValueError("claim_verdict: no primary (framing 'equal_steps') comparison given")
    verdicts = [c.verdict for c in primary]
    if FAILS in verdicts:
        return FAILS
    return HOLDS if all(v == HOLDS for v in verdicts) else NOT_RESOLVED


def control_report(method_verdict: Verdict, controls: dict[str, Sequence[Comparison]]) -> dict:
    """Verdict of each negative control (same rule, same comparisons) and whether the check is valid.

    A check is only valid if its controls come out differently from the method: when a control gets
    the method's verdict, the check cannot tell the method from that control.
    """
    if not controls:
        raise ValueError("control_report: at least one control is needed")
    verdicts = {name: claim_verdict(comps) for name, comps in controls.items()}
    same = [name for name, v in verdicts.items() if v == method_verdict]
    if same:
        note = (
            f"the check cannot tell the method from the control(s) {', '.join(same)}: "
            f"they get the same verdict ({method_verdict})"
        )
    else:
        note = "every control gets a different verdict from the method"
    return {"verdicts": verdicts, "valid": not same, "indistinguishable_from": same, "note": note}


def paired_comparisons(
    values, pairs: Sequence[tuple[str, str]], quantity: str, *, framing: str = PRIMARY, side: Side = "greater"
) -> list[Comparison]:
    """One ``Comparison`` per (method, baseline) pair; ``values[label]`` holds one number per seed (same order)."""
    return [
        compare(m, b, quantity, np.asarray(values[m], float) - np.asarray(values[b], float), framing=framing, side=side)
        for m, b in pairs
    ]


def decision(
    primary: Sequence[Comparison],
    controls: dict[str, tuple[str, Sequence[Comparison]]],
    secondary: Sequence[Comparison] = (),
    parts: dict[str, Sequence[Comparison]] | None = None,
) -> dict:
    """The machine-readable verdict fields of one simulation claim.

    ``controls``: name -> (what it is, its comparisons, same pairs with the control in place of the
    method). ``parts``: optional named subsets of the primary comparisons (e.g. each method of a
    two-method claim), each given its own verdict by the same rule.
    """
    verdict = claim_verdict(primary)
    report = control_report(verdict, {name: comps for name, (_, comps) in controls.items()})
    out = {
        "verdict": verdict,
        "framing": PRIMARY,
        "seeds": int(primary[0].seeds),
        "comparisons": [c.to_dict() for c in (*primary, *secondary)],
        "controls": [
            {
                "control": name,
                "description": text,
                "verdict": report["verdicts"][name],
                "comparisons": [c.to_dict() for c in comps],
            }
            for name, (text, comps) in controls.items()
        ],
        "controls_valid": report["valid"],
        "controls_note": report["note"],
    }
    if parts:
        out["parts"] = {name: claim_verdict(comps) for name, comps in parts.items()}
    return out


def decision_text(fields: dict) -> str:
    """One line: verdict, each primary comparison, each control's verdict, the control note."""
    prim = [c for c in fields["comparisons"] if c["primary"]]
    comps = "; ".join(
        f"{c['method']} − {c['baseline']} {c['difference']:+.3f} "
        f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] {c['verdict']}"
        for c in prim
    )
    ctrl = ", ".join(f"{c['control']}: {c['verdict']}" for c in fields["controls"])
    parts = fields.get("parts")
    part_text = (" (" + ", ".join(f"{k}: {v}" for k, v in parts.items()) + ")") if parts else ""
    return (
        f"{fields['verdict'].upper()}{part_text} at equal steps, {fields['seeds']} seeds, 95% t intervals: {comps}. "
        f"Controls: {ctrl}" + ("" if fields["controls_valid"] else f" — {fields['controls_note']}")
    )
