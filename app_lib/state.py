"""Widget state that lives in the URL: every widget is created through these wrappers.

Each wrapper (1) seeds ``st.session_state[key]`` once per session from ``?key=value``
in the URL (or the default), (2) creates the widget from session state only (no
``value=`` argument, so Streamlit never resets it when its range changes), and
(3) records the key, so that ``sync_url()`` at the end of a run writes every widget
shown in this run into the URL. A shared link therefore reproduces what was seen,
and ``settings()`` gives the same values for the exports.

A URL value that does not parse or lies outside the widget's range is reported
(``url_problems()``) and replaced by the default; nothing is silently clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import streamlit as st

_RENDERED = "_url_keys"  # session-state list of the keys rendered in the current run
_PROBLEMS = "_url_problems"
_KEEP = "_kept_"  # prefix of the copies that outlive a widget (values of views not shown)


def begin_run() -> None:
    """Call once at the top of the script: forget which widgets the previous run drew."""
    st.session_state[_RENDERED] = []
    st.session_state[_PROBLEMS] = []


def _parse(raw: str, default: Any, item: Any = None) -> Any:
    """A URL string into the type of ``default`` (lists and tuples are comma-separated, their
    elements of the type of ``item``, or of ``default[0]``)."""
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{raw!r} is not a boolean")
    if isinstance(default, int):
        value = _number(raw)
        if not value.is_integer():
            raise ValueError(f"{raw!r} is not an integer")
        return int(value)
    if isinstance(default, float):
        value = _number(raw)
        if not math.isfinite(value):
            raise ValueError(f"{raw!r} is not a finite number")
        return value
    if isinstance(default, (list, tuple)):
        parts = [p for p in raw.split(",") if p != ""]
        sample = item if item is not None else default[0] if len(default) else ""
        items = [_parse(p, sample) for p in parts]
        return tuple(items) if isinstance(default, tuple) else items
    return raw


def _number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None


def encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)  # shortest string that reads back to the same float
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (list, tuple)):
        return ",".join(encode(v) for v in value)
    return str(value)


def _seed(key: str, default: Any, valid, item: Any = None) -> None:
    """``key`` has no widget state (first sight in this session, or its view was left): take the
    value it had when last shown, else the URL's value if valid, else the default."""
    st.session_state[_RENDERED].append(key)
    if key in st.session_state:
        return
    if _KEEP + key in st.session_state:  # Streamlit drops a widget's state when a run does not draw it
        st.session_state[key] = st.session_state[_KEEP + key]
        return
    raw = st.query_params.get(key)
    value = default
    if raw is not None:
        try:
            parsed = _parse(raw, default, item)
            problem = valid(parsed)
        except ValueError as err:
            problem = str(err)
        if problem:
            st.session_state[_PROBLEMS].append(
                f"URL parameter {key}={raw!r} ignored: {problem}; using {encode(default)}"
            )
        else:
            value = parsed
    st.session_state[key] = value


def _in_range(lo, hi):
    def check(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in values if not lo <= v <= hi]
        return f"must lie in [{lo}, {hi}]" if bad else None

    return check


def _one_of(options):
    def check(value):
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in options]
        return f"{bad} not among {list(options)}" if bad else None

    return check


def slider(where, label: str, lo, hi, default, step, *, key: str, **kwargs):
    """``where.slider`` whose value is seeded from the URL; ``default`` may be a (low, high) tuple."""
    _seed(key, default, _in_range(lo, hi))
    return where.slider(label, lo, hi, step=step, key=key, **kwargs)


def clamp_and_slider(where, label: str, lo, hi, default, step, *, key: str, **kwargs):
    """A slider whose range depends on other widgets: its value is clamped into the new range
    (on purpose and visibly: the slider shows the clamped value) instead of being reset."""
    if key not in st.session_state and _KEEP + key in st.session_state:
        st.session_state[key] = st.session_state[_KEEP + key]
    if key in st.session_state:
        st.session_state[key] = min(max(st.session_state[key], lo), hi)
    return slider(where, label, lo, hi, default, step, key=key, **kwargs)


def select_slider(where, label: str, options: Sequence, default, *, key: str, **kwargs):
    _seed(key, default, _one_of(options))
    return where.select_slider(label, options=list(options), key=key, **kwargs)


def selectbox(where, label: str, options: Sequence, default=None, *, key: str, **kwargs):
    _seed(key, options[0] if default is None else default, _one_of(options))
    return where.selectbox(label, list(options), key=key, **kwargs)


def radio(where, label: str, options: Sequence, default=None, *, key: str, **kwargs):
    _seed(key, options[0] if default is None else default, _one_of(options))
    return where.radio(label, list(options), key=key, **kwargs)


def multiselect(where, label: str, options: Sequence, default: list, *, key: str, **kwargs):
    _seed(key, list(default), _one_of(options), item=options[0] if len(options) else None)
    return where.multiselect(label, list(options), key=key, **kwargs)


def checkbox(where, label: str, default: bool, *, key: str, **kwargs):
    _seed(key, bool(default), lambda value: None)
    return where.checkbox(label, key=key, **kwargs)


def url_problems() -> list[str]:
    return list(st.session_state.get(_PROBLEMS, []))


def settings() -> dict[str, Any]:
    """Every widget drawn so far in this run, by key (the same keys as the URL)."""
    return {
        key: st.session_state[key]
        for key in dict.fromkeys(st.session_state.get(_RENDERED, []))
        if key in st.session_state
    }


def query_string(values: dict[str, Any] | None = None) -> str:
    return urlencode({key: encode(value) for key, value in (settings() if values is None else values).items()})


def sync_url() -> None:
    """Write every widget shown in this run into the URL (and drop the keys no longer shown), and
    keep a copy of each value so that a view left and reopened shows its settings again."""
    shown = settings()
    for key, value in shown.items():
        st.session_state[_KEEP + key] = value
    wanted = {key: encode(value) for key, value in shown.items()}
    if dict(st.query_params.to_dict()) != wanted:
        st.query_params.from_dict(wanted)
