"""A small SVG of horizontal bar panels, one per workload, Conveyor's bar in its own color.

Linear scales, so bar lengths compare as ratios. A bar far past the others (arq's 500 ms
latency) is cut at 1.5 times the next one and marked with a break; its label keeps the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 470  # one panel
ROW = 19
LABEL = 112  # system names
VALUE = 96  # room for the number after the bar
OURS, PEER, BASE = "#d9480f", "#5c7cfa", "#adb5bd"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    kind: str = "peer"  # "ours", "peer" or "baseline"


@dataclass(frozen=True)
class Panel:
    title: str
    note: str  # "higher is better", ...
    bars: list[Bar]


def _axis_max(values: list[float]) -> float:
    top = sorted(values, reverse=True)
    if len(top) > 1 and top[1] > 0 and top[0] > 4 * top[1]:
        return 1.5 * top[1]
    return top[0] if top and top[0] > 0 else 1.0


def _panel(panel: Panel, x: float, y: float) -> tuple[list[str], float]:
    out = [
        f'<text x="{x}" y="{y + 14}" class="t">{escape(panel.title)}</text>',
        f'<text x="{x + WIDTH - 8}" y="{y + 14}" class="n" text-anchor="end">'
        f"{escape(panel.note)}</text>",
    ]
    top = _axis_max([b.value for b in panel.bars])
    span = WIDTH - LABEL - VALUE
    row_y = y + 24
    colors = {"ours": OURS, "peer": PEER, "baseline": BASE}
    for bar in panel.bars:
        length = max(1.0, span * min(bar.value, top) / top)
        weight = ' font-weight="bold"' if bar.kind == "ours" else ""
        out.append(
            f'<text x="{x + LABEL - 6}" y="{row_y + 13}" text-anchor="end"{weight}>'
            f"{escape(bar.label)}</text>"
        )
        out.append(
            f'<rect x="{x + LABEL}" y="{row_y + 2}" width="{length:.1f}" height="{ROW - 5}" '
            f'fill="{colors[bar.kind]}"/>'
        )
        if bar.value > top:  # cut: a white break across the bar's end
            cut = x + LABEL + length - 14
            out.append(
                f'<path d="M{cut:.1f},{row_y + 17} l5,-16 M{cut + 5:.1f},{row_y + 17} l5,-16" '
                'stroke="white" stroke-width="2"/>'
            )
        out.append(
            f'<text x="{x + LABEL + length + 5:.1f}" y="{row_y + 13}"{weight}>'
            f"{escape(bar.text)}</text>"
        )
        row_y += ROW
    return out, row_y - y + 14


def render(title: str, subtitle: str, panels: list[Panel], columns: int = 2) -> str:
    """The whole chart as an SVG document."""
    body: list[str] = []
    y = 58.0
    for start in range(0, len(panels), columns):
        heights = []
        for i, panel in enumerate(panels[start : start + columns]):
            parts, height = _panel(panel, 16 + i * (WIDTH + 24), y)
            body += parts
            heights.append(height)
        y += max(heights) + 8
    width = 16 + columns * (WIDTH + 24)
    legend = (
        f'<rect x="{width - 290}" y="14" width="10" height="10" fill="{OURS}"/>'
        f'<text x="{width - 275}" y="23">Conveyor</text>'
        f'<rect x="{width - 205}" y="14" width="10" height="10" fill="{PEER}"/>'
        f'<text x="{width - 190}" y="23">peers</text>'
        f'<rect x="{width - 140}" y="14" width="10" height="10" fill="{BASE}"/>'
        f'<text x="{width - 125}" y="23">bare redis-py</text>'
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y:.0f}" '
            f'viewBox="0 0 {width} {y:.0f}" font-family="Helvetica, Arial, sans-serif" '
            'font-size="12">',
            "<style>.t{font-weight:bold;font-size:13px}.n{fill:#868e96;font-size:11px}"
            ".h{font-weight:bold;font-size:16px}</style>",
            f'<rect width="{width}" height="{y:.0f}" fill="white"/>',
            f'<text x="16" y="24" class="h">{escape(title)}</text>',
            f'<text x="16" y="42" class="n">{escape(subtitle)}</text>',
            legend,
            *body,
            "</svg>",
        ]
    )
