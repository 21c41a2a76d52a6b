"""The explorer's views, registered by decorator: a new view is one decorated function in one module.

    from app_lib.views import Context, register_view

    @register_view("my_view", "6 · My view", order=60)
    def render(ctx: Context) -> None:
        st.header("...")                      # ctx.names, ctx.knobs, ctx.group_size: the sidebar

``load_views()`` imports the built-in view modules (each registers itself on import) and the
optional ones (``OPTIONAL_VIEW_MODULES``) when they exist, so a module written elsewhere
appears in the sidebar without touching app.py (``app_lib/views/compare.py`` wires in
``app_lib/compare_panels.py`` that way). A module that does not register itself but defines
``render`` — taking a Context, nothing, or ``st`` — is registered under its ``VIEW_TITLE``
(default: the module name).
"""

from __future__ import annotations

import importlib
import inspect
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

BUILTIN_VIEW_MODULES = (
    "app_lib.views.shapes",
    "app_lib.views.bandit",
    "app_lib.views.tabular",
    "app_lib.views.theorems",
    "app_lib.views.presets",
    "app_lib.views.sweeps",
    "app_lib.views.compare",  # registers itself only when app_lib/compare_panels.py exists
)
#: Modules that may be absent; each registers itself on import or exposes ``render``.
OPTIONAL_VIEW_MODULES: tuple[str, ...] = ()


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


def _adopt(module) -> None:
    """Register a module that exposes ``render`` but did not use the decorator."""
    if any(view.render.__module__ == module.__name__ for view in VIEWS.values()):
        return
    render = getattr(module, "render", None)
    if not callable(render):
        return
    params = list(inspect.signature(render).parameters)
    if not params:
        adapted = lambda ctx, _render=render: _render()  # noqa: E731
    elif params[0] == "st":  # render(st, ...): draws into the streamlit module or a container
        adapted = lambda ctx, _render=render: _render(importlib.import_module("streamlit"))  # noqa: E731
    else:
        adapted = render
    slug = getattr(module, "VIEW_SLUG", module.__name__.rsplit(".", 1)[-1])
    title = getattr(module, "VIEW_TITLE", slug.replace("_", " "))
    register_view(slug, title, int(getattr(module, "VIEW_ORDER", 100)), needs_estimators=False)(adapted)


def load_views(builtin=BUILTIN_VIEW_MODULES, optional=OPTIONAL_VIEW_MODULES) -> list[View]:
    """Import the view modules and return the registered views in sidebar order."""
    for name in builtin:
        importlib.import_module(name)
    for name in optional:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # the module exists but one of its imports is missing: say so
                raise
            continue
        _adopt(module)
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
