"""Widget state that lives in the URL: every widget is created through these wrappers.

Each wrapper (1) seeds ``st.session_state[key]`` once per session from ``?key=value``
in the URL (or the default), (2) creates the widget from session state only (no
``value=`` argument, so Streamlit never resets it when its range changes), and
(3) records the key, so that ``sync_url()`` at the end of a run writes every widget
shown in this run into the URL. A shared link therefore reproduces what was seen,
and ``settings()`` gives the same values for the exports.

Every value passes one function, ``declare``, as its widget is created: a URL value that does
not parse, has the wrong number of parts, repeats an item or lies outside the widget's range is
replaced by the default and reported (``url_problems()``, shown by app.py once every view has
declared its widgets) with the key, the value and what is allowed; nothing is silently clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import streamlit as st

_RENDERED = "_url_keys"  # session-state list of the keys rendered in the current run
_PROBLEMS = "_url_problems"
_SPECS = "_url_specs"  # session-state {key: {"default", "allowed"}} of every widget declared so far
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


def declare(key: str, default: Any, check, allowed: str, item: Any = None) -> None:
    """The one validation step of every URL-backed widget, called as the widget is created.

    ``key`` has no widget state (first sight in this session, or its view was left): take the
    value it had when last shown, else the URL's value if it parses (``_parse``) and passes
    ``check`` (None or the reason it fails), else ``default``. A rejected URL value is reported
    (``url_problems()``) with the key, the value, the reason and ``allowed`` (the widget's range
    or options in words), never silently replaced. ``specs()`` keeps what each key accepts.
    """
    st.session_state[_RENDERED].append(key)
    st.session_state.setdefault(_SPECS, {})[key] = {"default": default, "allowed": allowed}
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
            problem = _shape_problem(parsed, default) or check(parsed)
        except ValueError as err:
            problem = str(err)
        if problem:
            report(f"URL parameter {key}={raw!r} ignored: {problem}; allowed: {allowed}; using {encode(default)!r}")
        else:
            value = parsed
    st.session_state[key] = value


def report(problem: str) -> None:
    """Add one line to this run's URL warnings (shown once the page is drawn, see ``url_problems``)."""
    st.session_state.setdefault(_PROBLEMS, []).append(problem)


def _shape_problem(value: Any, default: Any) -> str | None:
    """Arity of a (low, high) pair, and no repeats in a multi-selection."""
    if isinstance(default, tuple):
        if len(value) != len(default):
            return f"needs {len(default)} comma-separated values, got {len(value)}"
        if list(value) != sorted(value):
            return "values must be in increasing order"
    if isinstance(default, list):
        repeated = [v for i, v in enumerate(value) if v in value[:i]]
        if repeated:
            return f"{encode(repeated[0])} is listed more than once"
    return None


def _fmt(x) -> str:
    return encode(x) if isinstance(x, (int, float)) else repr(x)


def _in_range(lo, hi, step):
    def check(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in values if not lo <= v <= hi]
        if bad:
            return f"{_fmt(bad[0])} is outside [{_fmt(lo)}, {_fmt(hi)}]"
        off = [v for v in values if abs((v - lo) / step - round((v - lo) / step)) > 1e-6]
        return f"{_fmt(off[0])} is not a multiple of the step {_fmt(step)} from {_fmt(lo)}" if off else None

    return check


def _range_words(lo, hi, step, default) -> str:
    pair = " (two values: low,high)" if isinstance(default, tuple) else ""
    return f"{_fmt(lo)} to {_fmt(hi)} in steps of {_fmt(step)}{pair}"


def _one_of(options):
    def check(value):
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v not in options]
        return f"{', '.join(_fmt(v) for v in bad)} not an option" if bad else None

    return check


def _options_words(options, many: bool = False) -> str:
    shown = ", ".join(_fmt(o) for o in options)
    return ("any of " if many else "one of ") + (shown if len(options) <= 16 else shown[:200] + ", …")


def slider(where, label: str, lo, hi, default, step, *, key: str, **kwargs):
    """``where.slider`` whose value is seeded from the URL; ``default`` may be a (low, high) tuple."""
    declare(key, default, _in_range(lo, hi, step), _range_words(lo, hi, step, default))
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
    declare(key, default, _one_of(options), _options_words(options))
    return where.select_slider(label, options=list(options), key=key, **kwargs)


def selectbox(where, label: str, options: Sequence, default=None, *, key: str, **kwargs):
    declare(key, options[0] if default is None else default, _one_of(options), _options_words(options))
    return where.selectbox(label, list(options), key=key, **kwargs)


def radio(where, label: str, options: Sequence, default=None, *, key: str, **kwargs):
    declare(key, options[0] if default is None else default, _one_of(options), _options_words(options))
    return where.radio(label, list(options), key=key, **kwargs)


def multiselect(where, label: str, options: Sequence, default: list, *, key: str, **kwargs):
    declare(
        key,
        list(default),
        _one_of(options),
        _options_words(options, many=True) + " (comma-separated, each once)"
        if len(options)
        else "nothing (no options)",
        item=options[0] if len(options) else None,
    )
    return where.multiselect(label, list(options), key=key, **kwargs)


def checkbox(where, label: str, default: bool, *, key: str, **kwargs):
    declare(key, bool(default), lambda value: None, "true or false")
    return where.checkbox(label, key=key, **kwargs)


def url_problems() -> list[str]:
    return list(dict.fromkeys(st.session_state.get(_PROBLEMS, [])))


def specs() -> dict[str, dict]:
    """What every widget declared in this session accepts: {key: {"default": ..., "allowed": words}}."""
    return dict(st.session_state.get(_SPECS, {}))


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
