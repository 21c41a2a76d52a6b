"""riskrl explorer: `streamlit run app.py`.

Views (each an ``app_lib/views/<view>.py`` module registered with ``app_lib.views.register_view``):
  1. advantage shapes for binary rewards (per prompt, and per bundle for RiskPO),
  2. bandit runs (reward, policy over time, entropy),
  3. tabular-prompt runs (reward, entropy, Cov(log π, A), pass@k, tail risk; pass@k vs k),
  4. theorem checks (Proposition 1, Theorem 2, Lemmas 2–4) with their statements,
  5. paper presets (the papers' figures, precomputed, with the reported values overlaid),
  6. sweeps (a final metric against β, B, α or ω),
  7. the real-model comparison (llm.compare results folders).
Every widget's value is in the URL (``app_lib.state``), so a link reproduces the page.
Formulas come from theory/, simulations from sandbox/; this file lays out the sidebar only.
"""

from __future__ import annotations

import streamlit as st
import torch

from app_lib import state
from app_lib.choices import DEFAULT_ESTIMATORS, Knobs
from app_lib.views import Context, find_view, load_views
from theory import list_estimators

RS_BETA_CHOICES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

#: What each estimator family name in the registry means, for the sidebar help.
FAMILY_WORDS = (
    "Estimator names follow the theory registry (theory.list_estimators). Parameters: α, β are quantile levels of the "
    "bundle-score law (RiskPO), ω the extra weight on the lower tail, B the questions per bundle, k the pass@k level; "
    "RS-GRPO's β is a different thing — the exponential-utility temperature (0 = mean objective, large = risk-seeking)."
)

st.set_page_config(page_title="riskrl explorer", page_icon="📉", layout="wide")


def sidebar(views) -> tuple:
    sb = st.sidebar
    sb.title("riskrl explorer")
    slugs = [view.slug for view in views]
    titles = {view.slug: view.title for view in views}
    requested = st.query_params.get("view")
    if "view" not in st.session_state and requested and requested.isdigit() and 1 <= int(requested) <= len(views):
        st.session_state["view"] = find_view(views, requested).slug  # an old ?view=<number> link
    # Any other unknown ?view= is reported like every bad URL value and opens the first view.
    slug = state.radio(sb, "View", slugs, key="view", format_func=titles.get)
    view = next(v for v in views if v.slug == slug)

    def off(key: str) -> bool:
        """Controls the current view does not read are drawn disabled (their values are kept)."""
        return view.sidebar is not None and key not in view.sidebar

    registry = list_estimators()
    names = state.multiselect(
        sb,
        "Estimators",
        list(registry),
        [n for n in DEFAULT_ESTIMATORS if n in registry],
        key="estimators",
        help=FAMILY_WORDS + "\n\n" + "\n\n".join(f"**{n}**: {d}" for n, d in registry.items()),
        disabled=off("estimators"),
    )
    sb.subheader("Estimator parameters")
    alpha = state.slider(
        sb,
        "α (lower quantile level)",
        0.0,
        1.0,
        0.2,
        0.05,
        key="alpha",
        help="RiskPO family: lower quantile level",
        disabled=off("alpha"),
    )
    beta = state.slider(
        sb,
        "β (upper quantile level)",
        0.0,
        1.0,
        0.8,
        0.05,
        key="beta",
        help="RiskPO family: upper quantile level (not RS-GRPO's β, which has its own slider below)",
        disabled=off("beta"),
    )
    omega = state.slider(sb, "ω (extra lower-tail weight)", 0.0, 3.0, 0.5, 0.1, key="omega", disabled=off("omega"))
    bundle_size = state.slider(
        sb, "B (questions per bundle)", 1, 16, 5, 1, key="bundle_size", disabled=off("bundle_size")
    )
    k = state.slider(sb, "k (pass@k)", 1, 32, 4, 1, key="k", disabled=off("k"))
    rs_beta = state.select_slider(
        sb, "RS-GRPO β (temperature)", RS_BETA_CHOICES, 2.0, key="rs_beta", disabled=off("rs_beta")
    )
    extra = state.multiselect(
        sb, "compare more RS-GRPO β", list(RS_BETA_CHOICES), [], key="rs_betas_extra", disabled=off("rs_betas_extra")
    )
    rs_betas = tuple(sorted({float(rs_beta), *(float(b) for b in extra)}))  # sorted: legends list β in order
    group_size = state.slider(
        sb, "G (responses per prompt)", 2, 64, 16, 1, key="group_size", disabled=off("group_size")
    )
    if view.sidebar is not None:
        sb.caption(
            "Greyed-out controls do not change this view."
            if view.sidebar
            else "This view does not use the sidebar's controls (they keep their values for the other views)."
        )
    knobs = Knobs(
        alpha=float(alpha),
        beta=float(beta),
        omega=float(omega),
        bundle_size=int(bundle_size),
        k=int(k),
        rs_betas=rs_betas,
    )
    sb.caption(
        "Every setting is in the page URL: copy it to share exactly this view. "
        "Exports (CSV/HTML) carry the same settings."
    )
    return view, Context(tuple(names), knobs, int(group_size))


INTRO = (
    ("presets", "Paper presets", "the papers' figures in one click, with the numbers they report drawn on top."),
    (
        "bandit",
        "Bandit runs",
        "on the 3-arm problem, GRPO first lowers π(best arm) (RS-GRPO Lemma 2); RS-GRPO with β ≥ 2 does not.",
    ),
    (
        "tabular",
        "Tabular prompts",
        "RiskPO keeps the policy's entropy above GRPO's (RiskPO Prop. 1 + Thm 2); tick pass@k vs k below it.",
    ),
)


def _open(slug: str) -> None:
    st.session_state["view"] = slug
    st.session_state["_intro_closed"] = True


def intro(current: str) -> None:
    """First load of a session: what this is and three things to try (closed once a view is chosen)."""
    if st.session_state.get("_intro_closed"):
        return
    if st.session_state.setdefault("_intro_view", current) != current:  # the user picked a view: done
        st.session_state["_intro_closed"] = True
        return
    with st.container(border=True):
        st.markdown(
            "**riskrl explorer**: the advantage estimators of RiskPO and RS-GRPO, their theorems and the papers' "
            "figures, computed live from `theory/` and `sandbox/`. Three things to try:"
        )
        for column, (slug, title, what) in zip(st.columns(len(INTRO)), INTRO):
            column.button(title, key=f"intro_{slug}", on_click=_open, args=(slug,), width="stretch")
            column.caption(what)


def main() -> None:
    state.begin_run()
    views = load_views()
    # At the top of the page, filled once the view has declared (and validated) its own widgets.
    url_warnings = st.container()
    view, ctx = sidebar(views)
    intro(view.slug)
    try:
        if view.needs_estimators and not ctx.names:
            st.warning("Select at least one estimator in the sidebar.")
        else:
            view.render(ctx)
    finally:
        for problem in state.url_problems():
            url_warnings.warning(problem, icon="🔗")
    state.sync_url()


# Every tensor here is tiny (a few arms, a few dozen prompts): intra-op threads only add
# synchronisation, which costs ~100x per op on a busy 2-core machine. Restored afterwards
# because AppTest runs this script inside the caller's process.
_threads = torch.get_num_threads()
torch.set_num_threads(1)
try:
    main()
finally:
    torch.set_num_threads(_threads)
