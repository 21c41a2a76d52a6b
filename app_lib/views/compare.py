"""View 7: real-model comparison results (the panels are ``app_lib/compare_panels.py``).

The panels are imported when the view is drawn, so the other views do not pay for them. The
folder picker lives in the sidebar through ``state`` so that the URL carries it.
"""

from __future__ import annotations

import streamlit as st

from app_lib import state
from app_lib.views import Context, register_view


@register_view("compare", "7 · LM comparison", order=70, needs_estimators=False, sidebar=())
def render(ctx: Context) -> None:
    from app_lib import compare_panels

    found = compare_panels.discover_folders()
    folders = state.multiselect(
        st.sidebar, "Result folders (docs/compare/*, runs/*)", found, found[:1], key="compare_folders"
    )
    compare_panels.render(st, list(folders))
