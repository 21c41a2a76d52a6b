"""Every URL-backed widget key of every registered view, given bad values of each kind.

The keys and what each accepts come from the app itself (``app_lib.state.specs()`` after a run
of the view), so a widget added later is walked without editing this file. For each view and
each kind of bad value, one run sets every key of the view to that kind of value at once and
must show no exception and exactly one warning per key, naming the key and the value.

The exhaustive walk (every view × every kind) is slow-marked; the default tier keeps the URLs
of issue 21 (one per bad kind, in the cheap views) and the unknown-view links.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
TIMEOUT = 180
KINDS = ("wrong_type", "out_of_range", "wrong_arity", "path_traversal", "empty")


def run(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def url_warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith("URL parameter ")]


def bad_value(kind: str, default) -> str | None:
    """A URL string of ``kind`` that no widget with this default accepts (None: not applicable —
    an empty multi-selection is a legitimate value, not a bad one)."""
    many = isinstance(default, list)
    pair = isinstance(default, tuple)
    if kind == "wrong_type":
        return "0.1,abc" if pair else "abc"
    if kind == "out_of_range":
        return "0,1e9" if pair else "1e9"
    if kind == "wrong_arity":
        if pair:
            return "0.5"
        if many:
            return None  # handled by the caller: an option listed twice
        return "1,2"
    if kind == "path_traversal":
        return "../../etc/passwd"
    if kind == "empty":
        return None if many else ""
    raise ValueError(kind)


def declared(view: str) -> dict[str, dict]:
    at = run({"view": view})
    return dict(at.session_state["_url_specs"])


def views() -> list[str]:
    from app_lib.views import load_views

    return [v.slug for v in load_views()]


def walk(view: str, keys: dict[str, dict], kind: str, options_of: dict[str, str]) -> tuple[int, int]:
    """Set every key of ``keys`` to a bad value of ``kind`` in one run; returns (bad keys, warnings seen)."""
    query = {"view": view} if view else {}
    for key, spec in keys.items():
        raw = bad_value(kind, spec["default"])
        if raw is None and kind == "wrong_arity" and key in options_of:
            raw = f"{options_of[key]},{options_of[key]}"
        if raw is not None:
            query[key] = raw
    bad = {k: v for k, v in query.items() if k != "view"}
    at = run(query)
    seen = url_warnings(at)
    for key, raw in bad.items():
        named = [w for w in seen if w.startswith(f"URL parameter {key}={raw!r} ignored")]
        assert len(named) == 1, (key, raw, seen)
        assert "allowed:" in named[0] and "using" in named[0], named[0]
    assert len(seen) == len(bad), (seen, bad)
    return len(bad), len(seen)


def first_option(spec: dict) -> str | None:
    """A valid single item of a multiselect key (from the words of its options)."""
    words = spec["allowed"]
    if not words.startswith("any of "):
        return None
    first = words[len("any of ") :].split(", ")[0].split(" (")[0]
    return first.strip("'")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_key_of_every_view_reports_each_kind_of_bad_value(kind):
    names = views()
    specs = {view: declared(view) for view in names}
    sidebar = set.intersection(*(set(s) for s in specs.values())) - {"view"}
    total_bad = total_seen = 0
    for view in names:
        own = {k: v for k, v in specs[view].items() if k not in sidebar and k != "view"}
        if view == names[0]:
            own.update({k: specs[view][k] for k in sidebar})
        options = {k: first_option(v) for k, v in own.items() if first_option(v)}
        bad, seen = walk(view, own, kind, options)
        total_bad, total_seen = total_bad + bad, total_seen + seen
    print(f"\nURL walk, kind {kind}: {total_bad} bad keys over {len(names)} views, {total_seen} warnings")
    assert total_bad >= 40  # every view contributes keys (a view whose widgets vanished would lower it)


# --------------------------------------------------------------------------- default tier: issue 21's URLs


@pytest.mark.parametrize(
    "query, key",
    [
        ({"view": "shapes", "bundle_acc": "0.5"}, "bundle_acc"),  # bug 1: was a traceback (unpacking one value)
        ({"view": "shapes", "bundle_acc": "0.2,0.5,0.8"}, "bundle_acc"),
        ({"view": "shapes", "bundle_acc": ""}, "bundle_acc"),
        ({"view": "shapes", "bundle_acc": "0.8,0.2"}, "bundle_acc"),  # low above high
        ({"view": "shapes", "num_correct": "999"}, "num_correct"),  # bug 2: view keys were silent
        ({"view": "shapes", "estimators": "grpo,grpo"}, "estimators"),  # bug 4: duplicate chips and rows
        ({"view": "presets", "preset": "garbage"}, "preset"),
        ({"view": "compare", "compare_folders": "../../etc"}, "compare_folders"),
        ({"view": "theorems", "thm2_instances": "abc", "lemma_instances": "20"}, "thm2_instances"),
        ({"view": "theorems", "lemma_instances": "25"}, "lemma_instances"),  # off the slider's step of 20
        ({"view": "bandit", "bandit_steps": "7", "estimators": "grpo"}, "bandit_steps"),
        ({"view": "bandit", "bandit_preset": "garbage", "bandit_steps": "20", "estimators": "grpo"}, "bandit_preset"),
        (
            {"view": "tabular", "tab_prompts": "1000000", "tab_steps": "10", "tab_seeds": "1", "estimators": "grpo"},
            "tab_prompts",
        ),
    ],
)
def test_issue_21_urls_warn_once_and_draw(query, key):
    at = run(query)
    seen = url_warnings(at)
    assert len(seen) == 1 and seen[0].startswith(f"URL parameter {key}={query[key]!r} ignored"), seen
    assert "allowed:" in seen[0]
    # The warning is at the top of the page, above the view's header (it was printed before the view ran).
    top = at.main.children[0]
    assert [w.value for w in top.children.values()] == seen


def test_the_duplicate_estimator_list_draws_one_row_per_estimator():
    at = run({"view": "shapes", "estimators": "grpo,grpo"})
    rows = list(at.dataframe[0].value["estimator"])
    assert len(rows) == len(set(rows)), rows  # the default selection, each estimator once


@pytest.mark.parametrize("requested", ["nonexistent", "Presets", "99", "0", ""])
def test_unknown_views_are_reported_and_open_the_first_view(requested):
    from app_lib.views import load_views

    at = run({"view": requested, "estimators": "grpo"})
    first = load_views()[0]
    assert at.radio(key="view").value == first.slug
    seen = url_warnings(at)
    assert len(seen) == 1 and seen[0].startswith(f"URL parameter view={requested!r} ignored"), seen
    assert all(f"'{v.slug}'" in seen[0] for v in load_views())  # the allowed views are named


def test_old_numeric_view_links_still_open_their_view_without_a_warning():
    at = run({"view": "4", "thm2_instances": "100", "lemma_instances": "20"})
    assert at.radio(key="view").value == "theorems" and not url_warnings(at)
