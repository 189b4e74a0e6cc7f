"""Server-rendered SVG charts: no JavaScript, scale with their viewBox, readable by screen readers.

bar_chart() draws one bar per (label, value) with a value axis (zero and the
maximum), the first/middle/last labels under the bars (or every one), and a <title> per bar
(staggered on two lines when many) so hovering or a screen reader tells the exact figure. stacked_chart() stacks several
series per column, with a legend; hbar_chart() draws named bars sideways, every name
readable. Each bar carries data-label / data-value (and data-series): the figures table
under a chart and the tests read the same numbers. The value axis's margin fits its
widest figure, so a money axis is not cut at the left on a phone (app.css makes the
text larger there).
"""
from __future__ import annotations

from typing import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 8, 12, 28
CHAR_W = 9.5  # the width of a character of tick text (16 px on phones), in viewBox units
LEGEND = 24  # room under a stacked chart for its legend
STAGGER = 18  # room for a second line of axis labels
ROW, NAME_W, NAME_CHARS, FIGURE_W = 26, 190, 17, 130  # hbar_chart: row height, name column, figure column

Format = Callable[[int | float], str]


def _frame(chart_id: str, title: str, height: int) -> list[str]:
    return [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-labelledby="{escape(chart_id)}-title" preserveAspectRatio="xMidYMid meet">',
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>']


def _tick(x: float, y: float, text: str, anchor: str = "middle", middle: bool = False) -> str:
    baseline = ' dominant-baseline="middle"' if middle else ""
    return f'<text class="tick" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{baseline}>{escape(text)}</text>'


def _columns(columns: Sequence[tuple[str, str, Sequence[int | float]]], series: Sequence[str] | None, *,
             title: str, chart_id: str, fmt: Format, every_label: bool) -> Markup:
    """Vertical columns, each (axis label, full label, values): one value per column without
    `series` (every bar drawn, zero ones flat), else stacked segments bottom first (empty ones skipped)."""
    top_value = max([sum(values) for _, _, values in columns] + [0])
    ticks = [fmt(0)] + ([fmt(top_value)] if top_value else [])
    left = max(LEFT, CHAR_W * max(len(t) for t in ticks) + 10)
    plot_w, plot_h = WIDTH - left - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(columns), 1)
    bar_w = max(step * 0.7, 1)
    base = TOP + plot_h
    staggered = every_label and len(columns) > 6  # many labels: every other one a line lower
    parts = _frame(chart_id, title, HEIGHT + (LEGEND if series else 0) + (STAGGER if staggered else 0)) + [
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<line class="axis" x1="{left}" y1="{TOP}" x2="{left}" y2="{base}"/>',
        _tick(left - 6, base, ticks[0], "end", middle=True),
    ]
    if top_value:
        parts.append(f'<line class="grid" x1="{left}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}"/>')
        parts.append(_tick(left - 6, TOP, ticks[1], "end", middle=True))
    last = len(columns) - 1
    labelled = set(range(len(columns))) if every_label else {0, len(columns) // 2, last}
    for i, (label, full, values) in enumerate(columns):
        x, y = left + i * step + (step - bar_w) / 2, base
        for s, value in enumerate(values):
            if series and not value:
                continue
            height = plot_h * value / top_value if top_value else 0
            y -= height
            kind, named, said = ("bar", "", fmt(value)) if not series else (
                f"bar series-{s}", f' data-series="{escape(series[s])}"', f"{fmt(value)} {series[s]}")
            parts.append(f'<rect class="{kind}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
                         f'data-label="{escape(full)}"{named} data-value="{value}"><title>{escape(full)}: '
                         f'{escape(said)}</title></rect>')
        if i in labelled:
            # The last of a few labels ends at its bar, so it is not cut at the right edge.
            end = i == last and not every_label and last > 0
            y = HEIGHT - 8 + (STAGGER if staggered and i % 2 else 0)
            parts.append(_tick(x + bar_w if end else x + bar_w / 2, y, label, "end" if end else "middle"))
    for s, name in enumerate(series or ()):  # the legend, under the axis labels
        x = left + s * 150
        parts.append(f'<rect class="swatch series-{s}" x="{x}" y="{HEIGHT + 4}" width="14" height="14"/>')
        parts.append(_tick(x + 20, HEIGHT + 11, name, "start", middle=True))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(bars: Sequence[tuple[str, int | float]], *, title: str, chart_id: str,
              fmt: Format = str, full_labels: Sequence[str] | None = None, every_label: bool = False) -> Markup:
    """An accessible SVG bar chart. `bars`: (axis label, value); `full_labels` name each bar in its <title>;
    `every_label`: label every bar (few bars), not only the first, middle and last."""
    full_labels = list(full_labels or [label for label, _ in bars])
    return _columns([(label, full, (value,)) for (label, value), full in zip(bars, full_labels)], None,
                    title=title, chart_id=chart_id, fmt=fmt, every_label=every_label)


def stacked_chart(columns: Sequence[tuple[str, str, Sequence[int]]], series: Sequence[str], *, title: str,
                  chart_id: str) -> Markup:
    """Columns of stacked counts: `columns` (axis label, full label, one count per series), `series`
    their names (bottom first), with a legend; an empty segment draws nothing."""
    return _columns(columns, series, title=title, chart_id=chart_id, fmt=str, every_label=False)


def hbar_chart(bars: Sequence[tuple[str, int | float]], *, title: str, chart_id: str, fmt: Format = str) -> Markup:
    """Named bars drawn sideways, one row each: the name on the left (cut to NAME_CHARS, whole in the
    bar's <title>), the figure after the bar."""
    top_value = max([value for _, value in bars] + [0])
    height = TOP + ROW * max(len(bars), 1) + 8
    plot_w = WIDTH - NAME_W - FIGURE_W
    parts = _frame(chart_id, title, height)
    parts.append(f'<line class="axis" x1="{NAME_W}" y1="{TOP}" x2="{NAME_W}" y2="{height - 8}"/>')
    for i, (label, value) in enumerate(bars):
        y = TOP + i * ROW
        width = plot_w * value / top_value if top_value else 0
        shown = label if len(label) <= NAME_CHARS else label[:NAME_CHARS - 1] + "…"
        parts.append(_tick(NAME_W - 6, y + ROW / 2, shown, "end", middle=True))
        parts.append(f'<rect class="bar" x="{NAME_W}" y="{y + 4}" width="{width:.1f}" height="{ROW - 8}" '
                     f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>')
        parts.append(_tick(NAME_W + width + 6, y + ROW / 2, fmt(value), "start", middle=True))
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
