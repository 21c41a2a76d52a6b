"""Numerical checks of every theoretical claim of RiskPO and RS-GRPO (filled in below)."""
from __future__ import annotations

from typing import Callable

__all__ = ["CLAIMS", "run_all_claims"]

CLAIMS: dict[str, Callable[..., dict]] = {}


def run_all_claims(seeds: int | None = None, progress=None, names=None) -> dict[str, dict]:
    raise NotImplementedError
