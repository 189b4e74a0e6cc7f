"""Server-rendered SVG charts: no JavaScript, scale with their viewBox, readable by screen readers.

bar_chart() draws one bar per (label, value) with a value axis (zero and the
maximum), the first/middle/last labels under the bars, and a <title> per bar
so hovering or a screen reader tells the exact figure.
"""
from __future__ import annotations

from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 8, 12, 28


def bar_chart(bars: Sequence[tuple[str, int | float]], *, title: str, chart_id: str,
              fmt: Callable[[int | float], str] = str, full_labels: Sequence[str] | None = None) -> Markup:
    """An accessible SVG bar chart. `bars`: (axis label, value); `full_labels` name each bar in its <title>."""
    full_labels = list(full_labels or [label for label, _ in bars])
    top_value = max([value for _, value in bars] + [0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(bars), 1)
    bar_w = max(step * 0.7, 1)
    base = TOP + plot_h
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{base}" text-anchor="end" dominant-baseline="middle">{escape(fmt(0))}</text>',
    ]
    if top_value:
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{TOP}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(fmt(top_value))}</text>')
    labelled = {0, len(bars) // 2, len(bars) - 1}
    for i, ((label, value), full) in enumerate(zip(bars, full_labels)):
        height = plot_h * value / top_value if top_value else 0
        x = LEFT + i * step + (step - bar_w) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - height:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
            f'data-label="{escape(full)}" data-value="{value}"><title>{escape(full)}: {escape(fmt(value))}</title></rect>'
        )
        if i in labelled:
            parts.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def daily_chart(series: Sequence[tuple], currency: str, *, chart_id: str, title: str) -> Markup:
    """bar_chart for [(date, minor units)…] in `currency`, days labelled "31 May", amounts as money."""
    from webapp.domain.money import display

    return bar_chart(
        [(day.strftime("%d %b"), amount) for day, amount in series], title=title, chart_id=chart_id,
        fmt=lambda minor: display(int(minor), currency),
        full_labels=[day.strftime("%a %d %b %Y") for day, _ in series],
    )
