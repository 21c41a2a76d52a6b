"""The comparison's two figures (training curves, pass@k vs k), drawn with matplotlib from the results folder's
tables; the LM and the simulator prediction side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["plot_curves", "plot_passk", "COLOURS"]

COLOURS = {"base": "tab:gray", "grpo": "tab:blue", "riskpo": "tab:orange", "rs_grpo": "tab:green", "dr_grpo": "tab:red"}


def _methods_in_order(frame: pd.DataFrame) -> list[str]:
    order = ["base", "grpo", "dr_grpo", "riskpo", "rs_grpo"]
    found = list(dict.fromkeys(frame["method"]))
    return [m for m in order if m in found] + [m for m in found if m not in order]


def plot_curves(curves: pd.DataFrame, simulator_curves: pd.DataFrame, path: Path) -> None:
    """Per-step reward, entropy and zero-advantage share: the LM runs (top) and the simulator (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("reward_mean", "training reward"),
        ("entropy", "token entropy"),
        ("frac_zero_adv_groups", "zero-advantage groups"),
        ("cov_logp_adv", "Cov(log π, A)"),
    ]
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 6.4), squeeze=False)
    for row, (frame, title) in enumerate([(curves, "LM run"), (simulator_curves, "tabular simulator")]):
        for col, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            ax.set_title(f"{label} ({title})", fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            if frame is None or frame.empty or metric not in frame.columns or frame[metric].isna().all():
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
                continue
            for method in _methods_in_order(frame):
                part = frame[frame["method"] == method].groupby("step")[metric].mean()
                ax.plot(
                    part.index,
                    part.values,
                    marker="." if len(part) < 30 else None,
                    label=method,
                    color=COLOURS.get(method),
                )
            ax.tick_params(labelsize=7)
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_passk(passk: pd.DataFrame, simulator_passk: pd.DataFrame, path: Path) -> None:
    """pass@k vs k (log2 axis): held-out LM with 95 % bootstrap bands, and the simulator's prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method in _methods_in_order(passk):
        part = passk[passk["method"] == method].groupby("k")[["pass_at_k", "ci_low", "ci_high"]].mean()
        (line,) = axes[0].plot(part.index, part["pass_at_k"], marker="o", label=method, color=COLOURS.get(method))
        axes[0].fill_between(part.index, part["ci_low"], part["ci_high"], alpha=0.15, color=line.get_color())
    axes[0].set_title("LM, held-out prompts (95% bootstrap bands)", fontsize=9)
    if simulator_passk is not None and not simulator_passk.empty:
        for method in _methods_in_order(simulator_passk):
            part = simulator_passk[simulator_passk["method"] == method]
            axes[1].plot(
                part["k"], part["pass_at_k"], marker="o", linestyle="--", label=method, color=COLOURS.get(method)
            )
    axes[1].set_title("tabular simulator, same estimators (prediction)", fontsize=9)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- markdown
