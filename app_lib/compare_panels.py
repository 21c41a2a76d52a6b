"""Explorer view of real-model comparisons: ``render(st, folders)``.

Shows one or more folders side by side, each loaded with
``llm.compare.results.load_folder`` (a ``python -m llm.compare`` results folder,
an ``llm/train.py`` run, or a folder of runs):

* reward and token entropy vs step per method (and the zero-advantage share);
* pass@k vs k with the 95 % bootstrap bands over held-out prompts;
* the tabular simulator's prediction for the same estimators (stored with the
  results; for plain training runs it can be computed on request).

Nothing is trained: the results shipped under ``docs/compare/`` are enough.
The explorer's view 7 (``app_lib/views/compare.py``) calls ``compare_panels.render(st, folders)``
(``folders=None`` shows a picker).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from llm.compare.results import load_folder, simulate

__all__ = ["render", "discover_folders", "curves_figure", "passk_figure"]

REPO = Path(__file__).resolve().parents[1]
PALETTE = qualitative.Plotly
METHOD_ORDER = ["base", "grpo", "riskpo", "rs_grpo", "dr_grpo"]
CURVE_PANELS = [  # short titles: four panels side by side must not overlap from 900 px up
    ("reward_mean", "training reward"),
    ("entropy", "token entropy"),
    ("frac_zero_adv_groups", "zero-adv. groups"),
    ("cov_logp_adv", "Cov(log π, A)"),
]
#: Legend under the plot, in rows: long labels (folder · method) are wrapped instead of cut off at the right.
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "xanchor": "left", "x": 0.0}


def discover_folders(root: Path = REPO) -> list[str]:
    """Comparison results under docs/compare/ first, then training runs under runs/ (relative paths)."""
    found = sorted(p.parent for p in (root / "docs" / "compare").glob("*/passk.csv"))
    found += sorted(p.parent for p in (root / "runs").glob("*/metrics.jsonl"))
    return [str(p.relative_to(root)) for p in found]


def _colours(labels) -> dict[str, str]:
    ordered = sorted(
        dict.fromkeys(labels),
        key=lambda m: (METHOD_ORDER.index(m.split(" · ")[-1]) if m.split(" · ")[-1] in METHOD_ORDER else 99, m),
    )
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(ordered)}


def _rgba(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def curves_figure(curves: pd.DataFrame, simulator_curves: pd.DataFrame | None = None) -> go.Figure:
    """Per-step panels; a second row holds the simulator's curves for the same estimators when given."""
    rows = 2 if simulator_curves is not None and not simulator_curves.empty else 1
    titles = [t for _, t in CURVE_PANELS] + ([f"{t} (sim.)" for _, t in CURVE_PANELS] if rows == 2 else [])
    fig = make_subplots(
        rows=rows, cols=len(CURVE_PANELS), subplot_titles=titles, horizontal_spacing=0.06, vertical_spacing=0.18
    )
    labels = list(curves.get("label", pd.Series(dtype=str))) + (list(simulator_curves["label"]) if rows == 2 else [])
    colours = _colours(labels)
    for row, frame, dash in [(1, curves, "solid"), (2, simulator_curves, "dash")][:rows]:
        for col, (metric, _) in enumerate(CURVE_PANELS, start=1):
            if frame.empty or metric not in frame.columns:
                continue
            for label in dict.fromkeys(frame["label"]):
                part = frame[frame["label"] == label].groupby("step")[metric].mean().dropna()
                if part.empty:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=part.index.tolist(),
                        y=part.tolist(),
                        name=label,
                        legendgroup=label,
                        mode="lines+markers" if len(part) < 40 else "lines",
                        showlegend=col == 1,
                        line={"color": colours[label], "dash": dash},
                    ),
                    row=row,
                    col=col,
                )
    for row, name in [(1, "LM run"), (2, "tabular simulator")][:rows]:
        fig.update_yaxes(title_text=name, row=row, col=1)
    for row in range(1, rows + 1):
        fig.update_xaxes(title_text="step", row=row)
    fig.update_layout(height=330 * rows + 90, margin={"t": 50, "b": 40}, legend={**LEGEND_BELOW, "y": -0.25 / rows})
    return fig


def passk_figure(passk: pd.DataFrame, simulator_passk: pd.DataFrame | None = None) -> go.Figure:
    """pass@k vs k (log2 axis): LM with bootstrap bands (left), simulator prediction (right)."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["held-out pass@k (95% bootstrap band)", "tabular simulator prediction"]
    )
    labels = (list(passk["label"]) if not passk.empty else []) + (
        list(simulator_passk["label"]) if simulator_passk is not None and not simulator_passk.empty else []
    )
    colours = _colours(labels)
    for label in dict.fromkeys(passk["label"] if not passk.empty else []):
        part = passk[passk["label"] == label].groupby("k")[["pass_at_k", "ci_low", "ci_high"]].mean()
        ks = part.index.tolist()
        fig.add_trace(
            go.Scatter(
                x=ks + ks[::-1],
                y=part["ci_high"].tolist() + part["ci_low"].tolist()[::-1],
                fill="toself",
                mode="lines",  # no markers: the band's vertices drew stray dots in the default colours
                fillcolor=_rgba(colours[label], 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=label,
                name=f"{label} band",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=part["pass_at_k"].tolist(),
                name=label,
                legendgroup=label,
                mode="lines+markers",
                line={"color": colours[label]},
            ),
            row=1,
            col=1,
        )
    if simulator_passk is not None and not simulator_passk.empty:
        for label in dict.fromkeys(simulator_passk["label"]):
            part = simulator_passk[simulator_passk["label"] == label].sort_values("k")
            fig.add_trace(
                go.Scatter(
                    x=part["k"].tolist(),
                    y=part["pass_at_k"].tolist(),
                    name=f"{label} (sim)",
                    legendgroup=label,
                    mode="lines+markers",
                    line={"color": colours[label], "dash": "dash"},
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(type="log", dtick=0.30102999566, title_text="k")  # log2 ticks: 1, 2, 4, ...
    fig.update_yaxes(title_text="pass@k", row=1, col=1)
    fig.update_layout(height=440, margin={"t": 50, "b": 40}, legend={**LEGEND_BELOW, "y": -0.22})
    return fig


def _label(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    frame = frame.copy()
    frame["label"] = (prefix + " · " if prefix else "") + frame["method"].astype(str)
    return frame


def _simulated_on_request(st, loaded, key: str):
    """Plain training runs carry no simulator prediction: compute one (small, seconds) if asked."""
    if not st.checkbox("Compute the tabular-simulator prediction for these estimators", value=False, key=key):
        return pd.DataFrame(), pd.DataFrame()
    import yaml

    methods = {}
    for run_dir in loaded.run_dirs:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else {}
        method = loaded.curves.loc[loaded.curves["run"] == run_dir.name, "method"].iloc[0]
        methods.setdefault(
            method,
            {"estimator": config.get("estimator", method), "estimator_params": config.get("estimator_params") or {}},
        )
    try:
        return simulate(methods, {"num_prompts": 40, "steps": 60, "seeds": 2}, [1, 2, 4, 8, 16])
    except ValueError as err:  # e.g. an estimator the simulator cannot run with these settings
        st.warning(f"simulator: {err}")
        return pd.DataFrame(), pd.DataFrame()


def render(st, folders=None) -> None:
    from app_lib.ui import chart, downloads

    """Draw the comparison view into ``st`` (the streamlit module or a container) for ``folders``."""
    st.header("Real-model comparison")
    if folders is None:
        choices = discover_folders()
        folders = st.multiselect(
            "Result folders (docs/compare/*, runs/*)", choices, default=choices[:1], key="compare_folders"
        )
        extra = st.text_input("…or another folder path", value="", key="compare_extra")
        folders = list(folders) + ([extra] if extra.strip() else [])
    if not folders:
        st.info(
            "No results folder found: run "
            "`python -m llm.compare --config llm/configs/compare.yaml --out docs/compare/<name>`."
        )
        return
    curves, passk, sim_curves, sim_passk, held, claims = [], [], [], [], [], []
    for index, folder in enumerate(folders):
        path = Path(folder) if Path(folder).is_absolute() or Path(folder).exists() else REPO / folder
        try:
            loaded = load_folder(path)
        except (FileNotFoundError, ValueError) as err:
            st.error(f"{folder}: {err}")
            continue
        prefix = loaded.name if len(folders) > 1 else ""
        curves.append(_label(loaded.curves, prefix))
        passk.append(_label(loaded.passk, prefix))
        held.append(_label(loaded.heldout, prefix))
        if loaded.simulator_curves.empty and not loaded.curves.empty:
            loaded.simulator_curves, loaded.simulator_passk = _simulated_on_request(st, loaded, f"simulate_{index}")
        sim_curves.append(_label(loaded.simulator_curves, prefix))
        sim_passk.append(_label(loaded.simulator_passk, prefix))
        if (path / "claims.csv").is_file():
            claims.append(pd.read_csv(path / "claims.csv").assign(folder=loaded.name))
        if loaded.missing_metrics:
            st.caption(f"{loaded.name}: not logged by the trainer: {', '.join(loaded.missing_metrics)}")
        if loaded.skipped_lines:
            st.caption(f"{loaded.name}: {loaded.skipped_lines} unreadable metrics.jsonl line(s) skipped")

    def joined(frames):
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    curves, passk, held = joined(curves), joined(passk), joined(held)
    sim_curves, sim_passk = joined(sim_curves), joined(sim_passk)
    if not curves.empty:
        st.subheader("Training curves")
        figure = curves_figure(curves, sim_curves)
        chart(st, figure, "compare_curves")
        downloads("compare_curves", curves, figure)
    if not passk.empty or not sim_passk.empty:
        st.subheader("pass@k vs k")
        figure = passk_figure(passk, sim_passk)
        chart(st, figure, "compare_passk")
        downloads("compare_passk", passk if not passk.empty else sim_passk, figure)
    if not passk.empty:
        table = passk.pivot_table(index="label", columns="k", values="pass_at_k", sort=False)
        table.columns = [f"pass@{k}" for k in table.columns]
        st.dataframe(table.reset_index(), key="compare_passk_table")
    if not held.empty:
        st.dataframe(held.drop(columns=["label"]), key="compare_heldout_table")
    if claims:
        st.subheader("Reading of the paper claims")
        st.dataframe(joined(claims), key="compare_claims_table")
