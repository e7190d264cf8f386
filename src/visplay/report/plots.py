"""The report's plots (matplotlib, embedded as PNG): training curves and per-family benchmark accuracy.

Readability rules, each answering a way the first report misled:
- one fixed colour per stage kind everywhere (questioner GRPO blue, reasoner GRPO orange), never a colour
  by plotting order;
- all curve panels share one x axis (GRPO steps, stages in run order) with every stage boundary marked and
  labelled, so a value can be read against the stage and iteration that produced it;
- legends sit outside the axes and hide no data;
- a series that never changes gets a line of text, not a whole panel.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass

ROLLING_WINDOW = 5  # steps in the reward's rolling mean: one step of 4 prompts is noise, five show a trend
# (metrics.jsonl key, panel title)
CURVES = [
    ("reward_mean", f"reward (mean; thick: rolling mean of {ROLLING_WINDOW} steps within each stage)"),
    ("frac_reward_zero_std", "groups with no learning signal (all rewards equal)"),
    ("reward_uncertainty", "questioner: uncertainty reward"),
    ("reward_validity", "questioner: question validity"),
    ("reward_confidence", "questioner: mean vote confidence"),
    ("reward_accuracy", "reasoner: agreement with the silver answer"),
    ("completion_length", "completion length (tokens)"),
    ("kl", "KL to the stage's start"),
]
STAGE_COLOURS = {"questioner": "#1f77b4", "reasoner": "#e6550d"}
OTHER_COLOUR = "#7f7f7f"
_STAGE = re.compile(r"iter(\d+)/(\w+)")


@dataclass
class StageSteps:
    """The logged steps of one GRPO stage, placed on the shared x axis at ``start``."""

    name: str  # e.g. iter01/questioner
    iteration: int
    kind: str  # questioner / reasoner
    records: list[dict]
    start: int = 0


def stage_colour(kind: str) -> str:
    return STAGE_COLOURS.get(kind, OTHER_COLOUR)


def stages_in_run_order(records: list[dict]) -> list[StageSteps]:
    """Group step records by stage; order by iteration, questioner before reasoner; assign x offsets.

    >>> recs = [{"event": "step", "stage": "iter01/reasoner"}, {"event": "step", "stage": "iter01/questioner"},
    ...         {"event": "step", "stage": "iter01/questioner"}, {"event": "stage_done", "stage": "iter01/curation"}]
    >>> [(s.name, s.start, len(s.records)) for s in stages_in_run_order(recs)]
    [('iter01/questioner', 0, 2), ('iter01/reasoner', 2, 1)]
    """
    by_name: dict[str, StageSteps] = {}
    for r in records:
        if r.get("event") != "step" or not isinstance(r.get("stage"), str):
            continue
        name = r["stage"]
        if name not in by_name:
            m = _STAGE.fullmatch(name)
            iteration, kind = (int(m.group(1)), m.group(2)) if m else (0, name)
            by_name[name] = StageSteps(name, iteration, kind, [])
        by_name[name].records.append(r)
    order = {"questioner": 0, "reasoner": 1}
    stages = sorted(by_name.values(), key=lambda s: (s.iteration, order.get(s.kind, 2), s.name))
    offset = 0
    for s in stages:
        s.start = offset
        offset += len(s.records)
    return stages


def rolling_mean(values: list[float], window: int = ROLLING_WINDOW) -> list[float]:
    """Trailing mean of the last ``window`` values at each step (fewer at the start of a stage).

    >>> rolling_mean([0.0, 1.0, 0.5, 1.0], window=2)
    [0.0, 0.5, 0.75, 0.75]
    """
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1): i + 1]
        out.append(sum(part) / len(part))
    return out


def reward_trend(stages: list[StageSteps], key: str = "reward_mean") -> list[dict]:
    """Per GRPO stage: mean reward over its first and last third of steps, and the change. Whether the
    training reward rises within a stage is the first thing to read: if it does not, nothing downstream will.

    >>> s = [StageSteps("iter01/reasoner", 1, "reasoner", [{"reward_mean": v} for v in (0.2, 0.4, 0.5, 0.6, 0.8, 0.7)])]
    >>> [(t["stage"], t["steps"], round(t["first"], 2), round(t["last"], 2), round(t["change"], 2)) for t in reward_trend(s)]
    [('iter01/reasoner', 6, 0.3, 0.75, 0.45)]
    """
    rows = []
    for s in stages:
        values = [r[key] for r in s.records if _finite(r.get(key))]
        if len(values) < 2:
            continue
        third = max(1, len(values) // 3)
        first, last = sum(values[:third]) / third, sum(values[-third:]) / third
        rows.append({"stage": s.name, "kind": s.kind, "steps": len(values), "first": first, "last": last,
                     "change": last - first})
    return rows


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def split_flat(stages: list[StageSteps], curves=CURVES) -> tuple[list[tuple[str, str]], list[tuple[str, float]]]:
    """(curves worth a panel, (title, value) of series that never change); curves never logged are dropped.

    >>> s = [StageSteps("iter01/questioner", 1, "questioner", [{"kl": 0.0, "reward_mean": 0.1}, {"kl": 0.0, "reward_mean": 0.3}])]
    >>> split_flat(s, [("reward_mean", "reward"), ("kl", "KL"), ("loss", "loss")])
    ([('reward_mean', 'reward')], [('KL', 0.0)])
    """
    panels, flat = [], []
    for key, title in curves:
        values = [r[key] for s in stages for r in s.records if _finite(r.get(key))]
        if not values:
            continue
        if max(values) - min(values) <= 1e-12 * max(1.0, abs(values[0])):
            flat.append((title, values[0]))
        else:
            panels.append((key, title))
    return panels, flat


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_png(records: list[dict]) -> tuple[str | None, list[tuple[str, float]]]:
    """Training curves as a base64 PNG (or None when no step was logged), and the flat series left out."""
    fig, flat = curves_figure(records)
    return (_png(fig) if fig is not None else None), flat


def curves_figure(records: list[dict]):
    """(matplotlib figure or None, flat series): one panel per changing curve, stages in run order."""
    stages = stages_in_run_order(records)
    panels, flat = split_flat(stages)
    if not panels:
        return None, flat
    plt = _pyplot()
    from matplotlib.lines import Line2D

    total = sum(len(s.records) for s in stages)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10.5, 1.75 * len(panels) + 1.1), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (key, title) in zip(axes, panels):
        for s in stages:
            points = [(s.start + i, r[key]) for i, r in enumerate(s.records) if _finite(r.get(key))]
            if points:
                xs, ys = zip(*points)
                rolling = key == "reward_mean" and len(points) > 2
                ax.plot(xs, ys, marker="o", markersize=3, linewidth=0.8 if rolling else 1.4,
                        alpha=0.45 if rolling else 1.0, color=stage_colour(s.kind), gid=s.name)
                if rolling:  # the trend within the stage, restarted at each stage (a new model, new prompts)
                    ax.plot(xs, rolling_mean(list(ys)), linewidth=2.4, color=stage_colour(s.kind),
                            gid=f"{s.name}/rolling")
        for s in stages:
            if s.iteration % 2 == 0:  # alternate iterations shaded, so iterations read as blocks
                ax.axvspan(s.start - 0.5, s.start + len(s.records) - 0.5, color="#000000", alpha=0.04, linewidth=0)
            if s.start > 0:
                ax.axvline(s.start - 0.5, color="#999999", linewidth=0.8, linestyle="--")
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(alpha=0.25)
        ax.tick_params(labelsize=8)
    top = axes[0]
    for s in stages:  # stage labels above the top panel, centred on each stage's span
        label = f"it{s.iteration} {s.kind[:1].upper()}" if s.iteration else s.kind
        top.annotate(label, xy=(s.start + (len(s.records) - 1) / 2, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(0, 14), textcoords="offset points", ha="center", va="bottom", fontsize=8,
                     color=stage_colour(s.kind))
    axes[-1].set_xlim(-0.5, total - 0.5)
    axes[-1].set_xlabel("GRPO step, stages in run order (dashed lines: stage boundaries; shading: even iterations)",
                        fontsize=8)
    kinds = list(dict.fromkeys(s.kind for s in stages))
    handles = [Line2D([], [], color=stage_colour(k), marker="o", markersize=3, label=f"{k} GRPO") for k in kinds]
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.99, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig, flat


FAMILY_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4",
                  "#b2df8a", "#fb9a99"]


def family_png(benchmark: str, labels: list[str], overall: list[float | None],
               families: dict[str, list[float | None]]) -> str:
    """Accuracy (%) per family across models (base, iteration 1, ...) with the overall accuracy in black.

    Colours are fixed by the family's sorted position, so a family keeps its colour in every plot.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10.5, 3.6))
    xs = list(range(len(labels)))
    for i, name in enumerate(sorted(families)):
        pts = [(x, v) for x, v in zip(xs, families[name]) if v is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=4, linewidth=1.3, label=name,
                    color=FAMILY_COLOURS[i % len(FAMILY_COLOURS)])
    pts = [(x, v) for x, v in zip(xs, overall) if v is not None]
    if pts:
        ax.plot(*zip(*pts), marker="s", markersize=5, linewidth=2.6, color="black", label="all items")
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_ylabel("accuracy (%)", fontsize=8)
    ax.set_title(f"{benchmark}: accuracy per family", fontsize=9, loc="left")
    ax.grid(alpha=0.25)
    ax.tick_params(labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return _png(fig)
