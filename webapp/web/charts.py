"""Server-rendered SVG charts: no JavaScript, scale with their viewBox, readable by screen readers.

bar_chart() draws one bar per (label, value) with a value axis (zero and the
maximum), the first/middle/last labels under the bars (or every one), and a <title> per bar
so hovering or a screen reader tells the exact figure. hbar_chart() draws named bars
sideways (every name readable), stacked_chart() stacks series per column with a legend.
Each bar carries data-label/data-value (and data-series): the page's figure table and the
tests read the same numbers.
"""
from __future__ import annotations

from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 8, 12, 28


def bar_chart(bars: Sequence[tuple[str, int | float]], *, title: str, chart_id: str,
              fmt: Callable[[int | float], str] = str, full_labels: Sequence[str] | None = None,
              every_label: bool = False) -> Markup:
    """An accessible SVG bar chart. `bars`: (axis label, value); `full_labels` name each bar in its <title>;
    `every_label`: label every bar (few bars), not only the first, middle and last."""
    full_labels = list(full_labels or [label for label, _ in bars])
    top_value = max([value for _, value in bars] + [0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(bars), 1)
    bar_w = max(step * 0.7, 1)
    base = TOP + plot_h
    parts = _frame(chart_id, title, HEIGHT) + _value_axis(top_value, fmt)
    labelled = set(range(len(bars))) if every_label else {0, len(bars) // 2, len(bars) - 1}
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


def _frame(chart_id: str, title: str, height: int) -> list[str]:
    return [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMidYMid meet">',
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']


def _value_axis(top_value: int | float, fmt: Callable[[int | float], str]) -> list[str]:
    """The axes of a vertical chart, zero and (when above zero) the top value marked."""
    base = HEIGHT - BOTTOM
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{base}" text-anchor="end" dominant-baseline="middle">{escape(fmt(0))}</text>',
    ]
    if top_value:
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{TOP}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(fmt(top_value))}</text>')
    return parts


ROW, NAME_W, NAME_CHARS = 26, 150, 20


def hbar_chart(bars: Sequence[tuple[str, int | float]], *, title: str, chart_id: str,
               fmt: Callable[[int | float], str] = str) -> Markup:
    """Named bars drawn sideways, one row each, the name on the left and the figure after the bar."""
    top_value = max([value for _, value in bars] + [0])
    height = TOP + ROW * max(len(bars), 1) + 8
    plot_w = WIDTH - NAME_W - 120  # room on the right for the figure
    parts = _frame(chart_id, title, height)
    parts.append(f'<line class="axis" x1="{NAME_W}" y1="{TOP}" x2="{NAME_W}" y2="{height - 8}"/>')
    for i, (label, value) in enumerate(bars):
        y = TOP + i * ROW
        width = plot_w * value / top_value if top_value else 0
        shown = label if len(label) <= NAME_CHARS else label[:NAME_CHARS - 1] + "…"
        parts.append(f'<text class="tick" x="{NAME_W - 6}" y="{y + ROW / 2:.1f}" text-anchor="end" '
                     f'dominant-baseline="middle">{escape(shown)}</text>')
        parts.append(f'<rect class="bar" x="{NAME_W}" y="{y + 4}" width="{width:.1f}" height="{ROW - 8}" '
                     f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>')
        parts.append(f'<text class="tick figure" x="{NAME_W + width + 6:.1f}" y="{y + ROW / 2:.1f}" '
                     f'dominant-baseline="middle">{escape(fmt(value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_chart(columns: Sequence[tuple[str, str, Sequence[int]]], series: Sequence[str], *, title: str,
                  chart_id: str) -> Markup:
    """Columns of stacked counts: `columns` (axis label, full label, one count per series), `series`
    their names (bottom first), with a legend; an empty segment draws nothing."""
    top_value = max([sum(values) for _, _, values in columns] + [0])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(columns), 1)
    bar_w = max(step * 0.7, 1)
    base = TOP + plot_h
    parts = _frame(chart_id, title, HEIGHT + 22) + _value_axis(top_value, str)
    labelled = {0, len(columns) // 2, len(columns) - 1}
    for i, (label, full, values) in enumerate(columns):
        x = LEFT + i * step + (step - bar_w) / 2
        y = base
        for s, (name, value) in enumerate(zip(series, values)):
            if not value:
                continue
            height = plot_h * value / top_value
            y -= height
            parts.append(
                f'<rect class="bar series-{s}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
                f'data-label="{escape(full)}" data-series="{escape(name)}" data-value="{value}">'
                f'<title>{escape(full)}: {value} {escape(name)}</title></rect>')
        if i in labelled:
            parts.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    for s, name in enumerate(series):  # the legend, under the axis labels
        x = LEFT + s * 150
        parts.append(f'<rect class="swatch series-{s}" x="{x}" y="{HEIGHT + 6}" width="12" height="12"/>'
                     f'<text class="tick" x="{x + 18}" y="{HEIGHT + 12}" dominant-baseline="middle">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def day_labels(days: Sequence) -> tuple[list[str], list[str]]:
    """Axis labels ("31 May") and full labels ("Fri 31 May 2024") of dates."""
    return [day.strftime("%d %b") for day in days], [day.strftime("%a %d %b %Y") for day in days]


def daily_chart(series: Sequence[tuple], currency: str, *, chart_id: str, title: str) -> Markup:
    """bar_chart for [(date, minor units)…] in `currency`, days labelled "31 May", amounts as money."""
    from webapp.domain.money import display

    short, full = day_labels([day for day, _ in series])
    return bar_chart(list(zip(short, [amount for _, amount in series])), title=title, chart_id=chart_id,
                     fmt=lambda minor: display(int(minor), currency), full_labels=full)
