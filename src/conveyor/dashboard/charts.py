"""Charts as inline SVG, drawn here: no chart library, nothing fetched, readable in both themes
(colours come from CSS variables)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 720, 170, 28


def stacked_bars(buckets: Sequence[tuple[int, int]], labels: Sequence[str], title: str) -> str:
    """One bar per bucket: succeeded below, failed on top. `labels` name the first, middle and
    last bucket."""
    peak = max((ok + bad for ok, bad in buckets), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(1, len(buckets))
    bar = max(1.0, step - 2)
    usable = HEIGHT - 2 * PAD
    base = HEIGHT - PAD
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}">',
        f'<line class="axis" x1="{PAD}" y1="{base}" x2="{WIDTH - PAD}" y2="{base}"/>',
        f'<text class="tick" x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end">0</text>',
    ]
    for i, (ok, bad) in enumerate(buckets):
        x = PAD + i * step + 1
        ok_h, bad_h = usable * ok / peak, usable * bad / peak
        y = HEIGHT - PAD - ok_h
        if ok:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{ok_h:.1f}">'
                f"<title>{ok} succeeded</title></rect>"
            )
        if bad:
            parts.append(
                f'<rect class="bad" x="{x:.1f}" y="{y - bad_h:.1f}" width="{bar:.1f}"'
                f' height="{bad_h:.1f}"><title>{bad} failed</title></rect>'
            )
    if labels:
        positions = [PAD, WIDTH / 2, WIDTH - PAD]
        anchors = ["start", "middle", "end"]
        for label, x, anchor in zip(labels, positions, anchors, strict=False):
            parts.append(
                f'<text class="tick" x="{x:.0f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def depth_bar(counts: dict[str, int], states: Sequence[str]) -> str:
    """A one-line proportional bar of a queue's jobs by state."""
    total = sum(counts.get(s, 0) for s in states) or 1
    x, parts = 0.0, ['<svg class="depth" viewBox="0 0 100 8" preserveAspectRatio="none">']
    for state in states:
        width = 100 * counts.get(state, 0) / total
        if width:
            parts.append(
                f'<rect class="s-{state}" x="{x:.2f}" y="0" width="{width:.2f}" height="8">'
                f"<title>{counts.get(state, 0)} {state}</title></rect>"
            )
            x += width
    parts.append("</svg>")
    return "".join(parts)
