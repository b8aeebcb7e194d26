"""Server-rendered SVG charts: no JavaScript, no CDN, nothing fetched by the browser.

    svg = volume_chart(series, rng)          # bars: article_count (left axis); line: z-score (right axis)
    svg = line_chart(series, rng)            # a composite index, with a zero line when it crosses zero
    svg = heat_map(entities, dynamics, heat)  # entity × dynamic cells shaded by article count

Each chart has a legend above its plot. Every text placed in the SVG goes through :func:`markupsafe.escape`; the
result is :class:`Markup`, so the templates insert it as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from markupsafe import Markup, escape

from stackwatch.storage.dashboard import ModelChange, Point, Range, Series

__all__ = ["bucket_label", "heat_map", "line_chart", "volume_chart", "zscore_label"]

WIDTH, HEIGHT = 560, 184
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 44, 30, 22
BOTTOM = HEIGHT - PAD_BOTTOM
INNER = HEIGHT - PAD_TOP - PAD_BOTTOM
UNITS = {"1h": "hour", "1d": "day", "1w": "week"}
TICK_GAP = 10.0
"""The least vertical distance between two labels of the z-score axis."""
MARKED_POINTS = 60
"""Up to this many z-score points, each gets a dot with its value as a tooltip."""


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def bucket_label(rng: Range) -> str:
    """What one bar counts: ``articles per week``."""
    return f"articles per {UNITS.get(rng.width, rng.width)}"


def zscore_label(rng: Range) -> str:
    """What the line shows: the z-score of each bucket; for weeks, each week's highest daily z-score."""
    return "highest daily z-score of the week" if rng.width == "1w" else f"z-score of the {UNITS[rng.width]}"


def _when(at: datetime, rng: Range) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if rng.width == "1h" else f"{at:%Y-%m-%d}"


@dataclass(frozen=True, slots=True)
class _Window:
    """A range's start and end, read from the clock once per chart."""

    rng: Range
    start: datetime
    end: datetime

    @classmethod
    def of(cls, rng: Range) -> _Window:
        end = rng.until
        return cls(rng, end - timedelta(days=rng.days), end)

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        share = (at - self.start).total_seconds() / span if span else 0.0
        return PAD_LEFT + max(0.0, min(1.0, share)) * (WIDTH - PAD_LEFT - PAD_RIGHT)


def _y(value: float, low: float, high: float) -> float:
    return BOTTOM - (value - low) * INNER / ((high - low) or 1.0)


def _frame(title: str, window: _Window, left_max: str) -> list[str]:
    """The SVG head, the time axis with its first and last dates, and the left axis (0 and its top)."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{BOTTOM}" x2="{WIDTH - PAD_RIGHT}" y2="{BOTTOM}" stroke="#999"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" class="axis">{escape(left_max)}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{BOTTOM}" text-anchor="end" class="axis">0</text>',
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" class="axis">{escape(_when(window.start, window.rng))}</text>',
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" class="axis">'
        f"{escape(_when(window.end, window.rng))} UTC</text>",
    ]


def _model_marks(changes: Sequence[ModelChange], window: _Window) -> list[str]:
    """A dashed vertical line where another classifier version's articles begin: the numbers on either side come
    from different models."""
    marks = []
    for change in changes:
        if not window.start <= change.at < window.end:
            continue
        x = window.x(change.at)
        tip = f"classifier {change.version} from {change.at:%Y-%m-%d %H:%M} UTC"
        marks.append(
            f'<line class="model" x1="{x:.1f}" y1="{PAD_TOP}" x2="{x:.1f}" y2="{BOTTOM}">'
            f"<title>{escape(tip)}</title></line>"
        )
    return marks


def _legend(items: Sequence[tuple[str, str]]) -> str:
    """A row of swatches above the plot: ``(kind, text)`` with kind ``bar``, ``zline``, ``cline`` or ``model``."""
    parts = ['<g class="legend">']
    x = float(PAD_LEFT)
    for kind, text in items:
        if kind == "bar":
            parts.append(f'<rect class="bar" x="{x:.0f}" y="7" width="10" height="10"/>')
        else:
            parts.append(f'<line class="{escape(kind)}" x1="{x:.0f}" y1="12" x2="{x + 14:.0f}" y2="12"/>')
        parts.append(f'<text x="{x + 18:.0f}" y="16" class="legend-text">{escape(text)}</text>')
        x += 18 + 5.6 * len(text) + 16
    parts.append("</g>")
    return "".join(parts)


def _right_axis(low: float, high: float) -> list[str]:
    """The z-score's own axis on the right: its line, ticks at the top (max), 0 and the bottom (min, when
    negative), and a dashed zero line across the plot."""
    right = WIDTH - PAD_RIGHT
    zero = _y(0.0, low, high)
    parts = [
        f'<line class="zaxis" x1="{right}" y1="{PAD_TOP}" x2="{right}" y2="{BOTTOM}"/>',
        f'<line class="zero" x1="{PAD_LEFT}" y1="{zero:.1f}" x2="{right}" y2="{zero:.1f}"/>',
    ]
    ticks = [(high, "max"), (0.0, "zero")] + ([(low, "min")] if low < 0 else [])
    label_y = 0.0
    for value, name in ticks:  # top to bottom; a label too close to the one above moves down
        y = _y(value, low, high)
        label_y = max(y + 3.5, label_y + TICK_GAP)
        parts.append(
            f'<line class="ztick" x1="{right}" y1="{y:.1f}" x2="{right + 4}" y2="{y:.1f}"/>'
            f'<text x="{right + 6}" y="{label_y:.1f}" class="axis z" data-tick="{name}">{escape(_fmt(value))}</text>'
        )
    return parts


def _polyline(points: Sequence[Point], window: _Window, low: float, high: float, css: str) -> str:
    if not points:
        return ""
    coords = " ".join(f"{window.x(p.at):.1f},{_y(p.value, low, high):.1f}" for p in points)
    return f'<polyline class="{css}" fill="none" points="{coords}"/>'


def volume_chart(series: Series, rng: Range) -> Markup:
    """Bars of ``article_count`` per bucket (left axis) and the z-score as a line on its own right axis, with a
    legend naming both. In a weekly range the line is each week's highest daily z-score."""
    window = _Window.of(rng)
    bar_width = max(1.0, (WIDTH - PAD_LEFT - PAD_RIGHT) * rng.bucket / (window.end - window.start) - 1)
    peak = max((p.value for p in series.volume), default=0.0) or 1.0
    z_values = [p.value for p in series.zscore]
    z_low = min([0.0, *z_values])
    z_high = max([0.0, *z_values]) or 1.0
    title = f"{series.name}: {bucket_label(rng)}" + (f" and {zscore_label(rng)}" if series.zscore else "")
    parts = _frame(f"{title}, last {rng.days} days", window, _fmt(peak))
    legend = [("bar", bucket_label(rng))] + ([("zline", f"{zscore_label(rng)} (right axis)")] if z_values else [])
    marks = _model_marks(series.changes, window)
    parts.append(_legend(legend + ([("model", "model change")] if marks else [])))
    for point in series.volume:
        height = point.value / peak * INNER
        parts.append(
            f'<rect class="bar" x="{window.x(point.at):.1f}" y="{BOTTOM - height:.1f}" '
            f'width="{bar_width:.1f}" height="{height:.1f}"><title>{escape(_when(point.at, rng))}: '
            f"{escape(_fmt(point.value))} articles</title></rect>"
        )
    if z_values:
        parts += _right_axis(z_low, z_high)
        parts.append(_polyline(series.zscore, window, z_low, z_high, "zline"))
        if len(z_values) <= MARKED_POINTS:
            parts += [
                f'<circle class="zdot" cx="{window.x(p.at):.1f}" cy="{_y(p.value, z_low, z_high):.1f}" r="2">'
                f"<title>{escape(_when(p.at, rng))}: z {p.value:.2f}</title></circle>"
                for p in series.zscore
            ]
    parts += marks
    if not series.volume:
        empty = "no articles in this range"
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">{empty}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def line_chart(series: Series, rng: Range) -> Markup:
    """One line (a composite index), with a zero line when it crosses zero; weekly, each week's mean."""
    window = _Window.of(rng)
    low = min([0.0, *(p.value for p in series.volume)])
    high = max([0.0, *(p.value for p in series.volume)]) or 1.0
    label = "composite index" + (", weekly mean of its days" if rng.width == "1w" else f" per {UNITS[rng.width]}")
    parts = _frame(f"{series.name}: {label}, last {rng.days} days", window, _fmt(high))
    marks = _model_marks(series.changes, window)
    parts.append(_legend([("cline", label)] + ([("model", "model change")] if marks else [])))
    if low < 0:
        zero = _y(0.0, low, high)
        parts.append(f'<line x1="{PAD_LEFT}" y1="{zero:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{zero:.1f}" class="zero"/>')
        parts.append(f'<text x="{PAD_LEFT - 4}" y="{BOTTOM}" text-anchor="end" class="axis">{escape(_fmt(low))}</text>')
    parts.append(_polyline(series.volume, window, low, high, "cline"))
    parts += marks
    if not series.volume:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">no values</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def heat_map(
    entities: Sequence[str],
    dynamics: Sequence[str],
    heat: Mapping[tuple[str, str], float],
    *,
    link: str = "entity/",
    dynamic_link: str | None = None,
    query: str = "",
) -> Markup:
    """Rows: entities; columns: dynamics; each cell shaded by its article count and labelled with it.

    Entity labels link to ``link`` + the entity; with ``dynamic_link``, column heads link to it + the dynamic and
    each cell to its entity. ``query`` (``days=…&width=…``) is added to every link.
    """
    cell_w, cell_h, head_h = 90, 22, 24
    label_w = max(130, 12 + 7 * max((len(entity) for entity in entities), default=0))  # 11px labels: ~7px a letter
    width = label_w + cell_w * len(dynamics)
    height = head_h + cell_h * max(1, len(entities))
    peak = max(heat.values(), default=0.0) or 1.0
    suffix = f"?{query}" if query else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heat" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="entity by dynamic heat map"><title>articles per entity and dynamic</title>'
    ]
    for column, dynamic in enumerate(dynamics):
        x = label_w + column * cell_w + cell_w / 2
        head = f'<text x="{x}" y="16" text-anchor="middle" class="axis">{escape(dynamic)}</text>'
        if dynamic_link is not None:
            head = f'<a href="{escape(dynamic_link + _path(dynamic) + suffix)}">{head}</a>'
        parts.append(head)
    for row, entity in enumerate(entities):
        y = head_h + row * cell_h
        href = escape(link + _path(entity) + suffix)
        parts.append(
            f'<a href="{href}"><text x="{label_w - 6}" y="{y + 15}" text-anchor="end" '
            f'class="label">{escape(entity)}</text></a>'
        )
        for column, dynamic in enumerate(dynamics):
            value = heat.get((entity, dynamic), 0.0)
            shade = value / peak
            fill = f"rgb({int(255 - 200 * shade)},{int(255 - 120 * shade)},{int(255 - 40 * shade)})"
            x = label_w + column * cell_w
            parts.append(
                f'<a href="{href}"><rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"><title>{escape(entity)} × {escape(dynamic)}: {_fmt(value)}</title></rect>'
                f'<text x="{x + cell_w / 2}" y="{y + 15}" text-anchor="middle" class="cell">{_fmt(value)}</text></a>'
            )
    if not entities:
        parts.append(f'<text x="{width / 2}" y="{head_h + 15}" text-anchor="middle" class="empty">no entities</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def _path(name: str) -> str:
    return quote(name, safe="")
