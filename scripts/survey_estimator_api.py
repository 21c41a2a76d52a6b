"""Survey of the estimator API's answers to bad and edge inputs (issue 21, item 4).

Runs every bad input of tests/theory/test_theory_bad_inputs.py's estimator-API table (API_CASES)
and a list of valid edge inputs, and classifies each outcome:

    clear    ValueError/TypeError whose message names the argument
    cryptic  an exception that does not name it (or of another type, e.g. from inside torch)
    silent   a bad input accepted without an error
    handled  a valid edge input that returns finite advantages (mishandled otherwise)

    PYTHONPATH=$PWD python scripts/survey_estimator_api.py            # this tree
    PYTHONPATH=<old tree> python scripts/survey_estimator_api.py      # an older theory/, same table
"""

from __future__ import annotations

import collections
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from theory import get_estimator
from theory.quantiles import QuantileTracker

TABLE = Path(__file__).resolve().parents[1] / "tests" / "theory" / "test_theory_bad_inputs.py"
REWARDS = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)


def _load_table():
    spec = importlib.util.spec_from_file_location("bad_input_table", TABLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.API_CASES


def _finite_advantages(name, **params):
    est = get_estimator(name, **params)
    return bool(torch.isfinite(est(REWARDS).advantages).all())


def _round_trip_tracker():
    tracker = QuantileTracker()
    tracker.update(torch.rand(16, dtype=torch.float64))
    other = QuantileTracker()
    other.load_state_dict(tracker.state_dict())
    return torch.equal(other.values, tracker.values)


def _round_trip_estimator():
    est = get_estimator("riskpo", bundle_size=1)
    est(REWARDS)
    other = get_estimator("riskpo", bundle_size=1)
    other.load_state_dict(est.state_dict())
    return torch.equal(other(REWARDS).advantages, est(REWARDS).advantages)


EDGE_CASES = [
    ("riskpo alpha=0 (no lower tail below the band)", lambda: _finite_advantages("riskpo", alpha=0.0, bundle_size=1)),
    ("riskpo beta=1", lambda: _finite_advantages("riskpo", beta=1.0, bundle_size=1)),
    ("riskpo omega=0", lambda: _finite_advantages("riskpo", omega=0.0, bundle_size=1)),
    ("riskpo numpy float alpha", lambda: _finite_advantages("riskpo", alpha=np.float64(0.3), bundle_size=1)),
    ("riskpo numpy int bundle_size", lambda: _finite_advantages("riskpo", bundle_size=np.int64(2))),
    ("riskpo integral float bundle_size=2.0", lambda: _finite_advantages("riskpo", bundle_size=2.0)),
    ("riskpo 0-d tensor alpha", lambda: _finite_advantages("riskpo", alpha=torch.tensor(0.3), bundle_size=1)),
    ("riskpo batch quantiles", lambda: _finite_advantages("riskpo", quantile_source="batch", bundle_size=1)),
    (
        "riskpo fixed q_alpha == q_beta",
        lambda: _finite_advantages("riskpo", quantile_source="fixed", q_alpha=0.5, q_beta=0.5, bundle_size=1),
    ),
    ("rs_grpo beta=-2 (risk averse)", lambda: _finite_advantages("rs_grpo", beta=-2.0)),
    ("rs_grpo beta=0 (the GRPO-free limit)", lambda: _finite_advantages("rs_grpo", beta=0.0)),
    ("grpo eps=0 on groups with spread", lambda: _finite_advantages("grpo", eps=0.0)),
    ("passk_chen k=1", lambda: _finite_advantages("passk_chen", k=1)),
    ("pkpo k=G", lambda: _finite_advantages("pkpo", k=4)),
    ("cvar alpha=0.99", lambda: _finite_advantages("cvar", alpha=0.99)),
    (
        "tracker given from a tensor",
        lambda: QuantileTracker(init="given", initial_values=torch.tensor([0.0, 1.0])).values.tolist() == [0.0, 1.0],
    ),
    ("tracker state round trip", _round_trip_tracker),
    ("estimator state round trip", _round_trip_estimator),
    (
        "explicit torch.Generator",
        lambda: bool(
            torch.isfinite(
                get_estimator("riskpo", bundle_size=1)(REWARDS, generator=torch.Generator().manual_seed(0)).advantages
            ).all()
        ),
    ),
]


def classify_bad(call, name) -> tuple[str, str]:
    try:
        call()
    except (ValueError, TypeError) as error:
        return ("clear" if name in str(error) else "cryptic"), f"{type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 -- the survey records whatever escapes
        return "cryptic", f"{type(error).__name__}: {error}"
    return "silent", "no error"


def classify_edge(call) -> tuple[str, str]:
    try:
        ok = call()
    except Exception as error:  # noqa: BLE001
        return "mishandled", f"{type(error).__name__}: {error}"
    return ("handled" if ok else "mishandled"), ""


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    counts = collections.Counter()
    for case_id, call, name in _load_table():
        outcome, detail = classify_bad(call, name)
        counts[outcome] += 1
        if verbose or outcome != "clear":
            print(f"{outcome:10s} {case_id}: {detail[:160]}")
    for case_id, call in EDGE_CASES:
        outcome, detail = classify_edge(call)
        counts[outcome] += 1
        if verbose or outcome != "handled":
            print(f"{outcome:10s} {case_id}: {detail[:160]}")
    total = sum(counts.values())
    print(
        f"\n{total} inputs: "
        + ", ".join(f"{counts[k]} {k}" for k in ("clear", "handled", "silent", "cryptic", "mishandled"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
