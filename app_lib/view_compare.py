"""View 7: real-model comparison results (``app_lib/compare_view.py``, from the cmp work), wired in.

Registered only when that module exists; imported lazily, so the other views do not pay for
it. Its folder picker lives in the sidebar through ``state`` so that the URL carries it.
"""
from __future__ import annotations

import importlib.util

import streamlit as st

from . import state
from .views import Context, register_view

AVAILABLE = importlib.util.find_spec("app_lib.compare_view") is not None


def render(ctx: Context) -> None:
    from . import compare_view

    found = compare_view.discover_folders()
    folders = state.multiselect(st.sidebar, "Result folders (docs/compare/*, runs/*)", found, found[:1], key="compare_folders")
    compare_view.render(st, list(folders))


if AVAILABLE:
    register_view("compare", "7 · LM comparison", order=70, needs_estimators=False)(render)
