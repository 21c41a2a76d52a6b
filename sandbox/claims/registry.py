"""The claim registry: every numerical check of a paper statement is registered once, by decorator.

    @register_claim("thm2_covariance", kind="instances", paper="RiskPO v2, Theorem 2 (line ~140)",
                    title="...", statement="...", assumptions="...", conclusion="...", erratum=None,
                    figure=plots.thm2_figure)
    def claim_thm2_covariance(seeds=2000, ...) -> dict: ...

A registered function returns a dict with at least

    holds:    bool, the statement AS PRINTED held on every checked instance,
    measured: a one-line summary (the README/summary table),
    table:    list of row dicts (written as CSV by the CLI),

and the wrapper adds the registry's text fields (claim = title, paper, statement,
assumptions, conclusion, erratum, kind) so callers that only have the result can show them.
``list_claims()`` / ``get_claim(name)`` give the ``Claim`` records (see docs/sandbox.md).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Literal

import torch

__all__ = [
    "Claim",
    "CLAIMS",
    "SIMULATION_CLAIMS",
    "register_claim",
    "list_claims",
    "get_claim",
    "size_overrides",
    "result",
    "generator",
]

Kind = Literal["simulation", "instances"]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked statement. ``kind``: "simulation" trains policies (``seeds`` = training seeds);
    "instances" draws random exact instances (``seeds`` = number of instances)."""

    name: str
    function: Callable[..., dict]
    kind: Kind
    paper: str
    title: str
    statement: str
    assumptions: str
    conclusion: str
    erratum: str | None = None
    figure: Callable[[str, dict], object] | None = None

    @property
    def takes_progress(self) -> bool:
        return "progress" in inspect.signature(self.function).parameters

    def text(self) -> dict[str, str | None]:
        """The fields an explorer displays next to the check."""
        return {
            "claim": self.title,
            "paper": self.paper,
            "statement": self.statement,
            "assumptions": self.assumptions,
            "conclusion": self.conclusion,
            "erratum": self.erratum,
            "kind": self.kind,
        }


_REGISTRY: dict[str, Claim] = {}
#: name -> claim function (the wrapped function; kept for ``CLAIMS[name](...)`` callers).
CLAIMS: dict[str, Callable[..., dict]] = {}
#: names of the claims that train policies; filled by ``register_claim``.
SIMULATION_CLAIMS: set[str] = set()


def register_claim(
    name: str,
    *,
    kind: Kind,
    paper: str,
    title: str,
    statement: str,
    assumptions: str,
    conclusion: str,
    erratum: str | None = None,
    figure=None,
):
    """Registers ``fn`` under ``name``; the returned function adds the text fields to every result."""
    if kind not in ("simulation", "instances"):
        raise ValueError(f"kind={kind!r} must be 'simulation' or 'instances'")
    for field, value in (
        ("title", title),
        ("statement", statement),
        ("assumptions", assumptions),
        ("conclusion", conclusion),
    ):
        if not value or not value.strip():
            raise ValueError(f"claim {name!r}: {field} must be non-empty")

    def decorate(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name in _REGISTRY:
            raise ValueError(f"claim {name!r} is registered twice")

        @functools.wraps(fn)
        def run(*args, **kwargs) -> dict:
            out = fn(*args, **kwargs)
            for key, value in record.text().items():
                out.setdefault(key, value)
            return out

        record = Claim(name, run, kind, paper, title, statement, assumptions, conclusion, erratum, figure)
        _REGISTRY[name] = record
        CLAIMS[name] = run
        if kind == "simulation":
            SIMULATION_CLAIMS.add(name)
        return run

    return decorate


def list_claims() -> list[Claim]:
    """Every registered claim, in registration order (the order of ``python -m sandbox all``)."""
    return list(_REGISTRY.values())


def get_claim(name: str) -> Claim:
    if name not in _REGISTRY:
        raise ValueError(f"unknown claim {name!r}; choose from {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def size_overrides(name: str, seeds: int | None = None, instances: int | None = None) -> dict:
    """Size overrides for one claim: ``seeds`` reaches simulation claims, ``instances`` the instance claims."""
    value = seeds if get_claim(name).kind == "simulation" else instances
    return {} if value is None else {"seeds": int(value)}


def result(holds: bool, measured: str, table: list[dict], **extra) -> dict:
    return {"holds": bool(holds), "measured": measured, "table": table, **extra}


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))
