"""The explorer's views, registered by decorator: a new view is one decorated function in one module.

    from app_lib.views import Context, register_view

    @register_view("my_view", "6 · My view", order=60)
    def render(ctx: Context) -> None:
        st.header("...")                      # ctx.names, ctx.knobs, ctx.group_size: the sidebar

``load_views()`` imports the view modules of ``VIEW_MODULES``; each registers itself on import,
so a new view is one module plus one line there, and app.py does not change.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from app_lib.choices import Knobs


@dataclass(frozen=True)
class Context:
    """What the sidebar hands every view."""

    names: tuple[str, ...]
    knobs: Knobs
    group_size: int


@dataclass(frozen=True)
class View:
    slug: str  # the ?view= value
    title: str  # the sidebar label
    render: Callable[[Context], None]
    order: int
    needs_estimators: bool = True  # False: the view draws without any estimator selected
    #: The sidebar controls (their keys) that change what this view shows; None: all of them.
    #: The others are drawn disabled on this view, so the sidebar says what applies.
    sidebar: tuple[str, ...] | None = None


VIEWS: dict[str, View] = {}

VIEW_MODULES = (
    "app_lib.views.shapes",
    "app_lib.views.bandit",
    "app_lib.views.tabular",
    "app_lib.views.theorems",
    "app_lib.views.presets",
    "app_lib.views.sweeps",
    "app_lib.views.regime_map",
    "app_lib.views.compare",
)


def register_view(
    slug: str, title: str, order: int, *, needs_estimators: bool = True, sidebar: tuple[str, ...] | None = None
):
    """Decorator: add ``render(ctx)`` to the sidebar under ``title``, reachable as ``?view=slug``;
    ``sidebar`` names the sidebar controls the view reads (None: all)."""
    if not slug.isidentifier():
        raise ValueError(f"slug={slug!r} must be an identifier (it is used in URLs)")

    def decorate(render: Callable[[Context], None]) -> Callable[[Context], None]:
        existing = VIEWS.get(slug)
        if existing is not None and existing.render.__qualname__ != render.__qualname__:
            raise ValueError(f"view slug {slug!r} is already registered by {existing.render.__module__}")
        VIEWS[slug] = View(slug, title, render, order, needs_estimators, None if sidebar is None else tuple(sidebar))
        return render

    return decorate


def load_views(modules=VIEW_MODULES) -> list[View]:
    """Import the view modules (each registers its views) and return the views in sidebar order."""
    for name in modules:
        importlib.import_module(name)
    return sorted(VIEWS.values(), key=lambda view: (view.order, view.slug))


def find_view(views: list[View], requested: str | None) -> View:
    """``?view=`` by slug, or by 1-based position (old links: ``?view=2``); the first view otherwise."""
    if requested:
        for view in views:
            if view.slug == requested:
                return view
        if requested.isdigit() and 1 <= int(requested) <= len(views):
            return views[int(requested) - 1]
    return views[0]
