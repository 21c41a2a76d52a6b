"""View 7: real-model comparison results (``app_lib/compare_panels.py``, from the cmp work), wired in.

Registered only when that module exists; imported lazily, so the other views do not pay for
it. Its folder picker lives in the sidebar through ``state`` so that the URL carries it.
"""

from __future__ import annotations

import importlib.util

import streamlit as st

from app_lib import state
from app_lib.views import Context, register_view

AVAILABLE = importlib.util.find_spec("app_lib.compare_panels") is not None


def render(ctx: Context) -> None:
    from app_lib import compare_panels

    found = compare_panels.discover_folders()
    folders = state.multiselect(
        st.sidebar, "Result folders (docs/compare/*, runs/*)", found, found[:1], key="compare_folders"
    )
    compare_panels.render(st, list(folders))


if AVAILABLE:
    register_view("compare", "7 · LM comparison", order=70, needs_estimators=False, sidebar=())(render)
