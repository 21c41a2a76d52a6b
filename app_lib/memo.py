"""A small in-process cache of built pages parts (tables + Plotly figures), keyed by settings.

``st.cache_data`` caches the simulator runs, but it returns copies (unpickled on every hit)
and building a Plotly figure from them validates every trace again: for the bandit view's
animation that was ~0.5 s of CPU on each rerun. A figure built once per settings key is kept
here as the object itself (read-only by convention: callers never mutate what they get), so a
rerun with unchanged settings only serialises it. Shared by all sessions of the server, like
Streamlit's own caches; least recently used entries are dropped beyond ``max_entries``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_LOCK = threading.Lock()
_ENTRIES: OrderedDict[Hashable, Any] = OrderedDict()
MAX_ENTRIES = 512  # a page's figures or one estimator's run: each well under a MB


def has(key: Hashable) -> bool:
    with _LOCK:
        return key in _ENTRIES


def put(key: Hashable, value: Any, max_entries: int = MAX_ENTRIES) -> None:
    with _LOCK:
        _ENTRIES[key] = value
        _ENTRIES.move_to_end(key)
        while len(_ENTRIES) > max_entries:
            _ENTRIES.popitem(last=False)


def get(key: Hashable) -> Any:
    with _LOCK:
        _ENTRIES.move_to_end(key)
        return _ENTRIES[key]


def get_or_build(key: Hashable, build: Callable[[], Any], max_entries: int = MAX_ENTRIES) -> Any:
    """``build()`` once per key (two sessions may race to build it: both results are valid)."""
    with _LOCK:
        if key in _ENTRIES:
            _ENTRIES.move_to_end(key)
            return _ENTRIES[key]
    value = build()
    put(key, value, max_entries)
    return value


def clear() -> None:
    with _LOCK:
        _ENTRIES.clear()
