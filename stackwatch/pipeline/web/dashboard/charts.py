"""Server-rendered SVG charts: no JavaScript, no CDN, nothing fetched by the browser.

    svg = volume_chart(series, rng)          # bars: article_count; line: z-score on its own axis
    svg = heat_map(entities, dynamics, heat)  # entity × dynamic cells shaded by article count

Every text placed in the SVG goes through :func:`markupsafe.escape`; the result is :class:`Markup`, so the
templates insert it as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import quote

from markupsafe import Markup, escape

from stackwatch.storage.dashboard import Point, Range, Series

__all__ = ["heat_map", "line_chart", "volume_chart"]

WIDTH, HEIGHT = 560, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 40, 40, 12, 22


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _x(at: datetime, start: datetime, span: float) -> float:
    share = (at - start).total_seconds() / span if span else 0.0
    return PAD_LEFT + max(0.0, min(1.0, share)) * (WIDTH - PAD_LEFT - PAD_RIGHT)


def _frame(title: str, start: datetime, end: datetime, left_max: str, right: str) -> list[str]:
    bottom = HEIGHT - PAD_BOTTOM
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{bottom}" x2="{WIDTH - PAD_RIGHT}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" class="axis">{escape(left_max)}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{bottom}" text-anchor="end" class="axis">0</text>',
        f'<text x="{WIDTH - PAD_RIGHT + 4}" y="{PAD_TOP + 8}" class="axis z">{escape(right)}</text>',
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" class="axis">{start:%Y-%m-%d %H:%M}</text>',
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" class="axis">'
        f"{end:%Y-%m-%d %H:%M} UTC</text>",
    ]


def _polyline(points: Sequence[Point], start: datetime, span: float, low: float, high: float, css: str) -> str:
    if not points:
        return ""
    scale = (HEIGHT - PAD_TOP - PAD_BOTTOM) / ((high - low) or 1.0)
    coords = " ".join(
        f"{_x(p.at, start, span):.1f},{HEIGHT - PAD_BOTTOM - (p.value - low) * scale:.1f}" for p in points
    )
    return f'<polyline class="{css}" fill="none" points="{coords}"/>'


def volume_chart(series: Series, rng: Range) -> Markup:
    """Bars of ``article_count`` per bucket and the z-score as a line (right axis)."""
    start = rng.since
    end = start + timedelta(days=rng.days)
    span = (end - start).total_seconds()
    bucket = 86400.0 if rng.width == "1d" else 3600.0
    bar_width = max(1.0, (WIDTH - PAD_LEFT - PAD_RIGHT) * bucket / span - 1)
    peak = max((p.value for p in series.volume), default=0.0) or 1.0
    z_low = min([0.0, *(p.value for p in series.zscore)])
    z_high = max([1.0, *(p.value for p in series.zscore)])
    parts = _frame(
        f"{series.name}: articles per {rng.width} bucket and z-score, last {rng.days} days",
        start,
        end,
        _fmt(peak),
        f"z {_fmt(z_high)}" if series.zscore else "",
    )
    inner = HEIGHT - PAD_TOP - PAD_BOTTOM
    for point in series.volume:
        height = point.value / peak * inner
        parts.append(
            f'<rect class="bar" x="{_x(point.at, start, span):.1f}" y="{HEIGHT - PAD_BOTTOM - height:.1f}" '
            f'width="{bar_width:.1f}" height="{height:.1f}"><title>{point.at:%Y-%m-%d %H:%M}: '
            f"{_fmt(point.value)}</title></rect>"
        )
    parts.append(_polyline(series.zscore, start, span, z_low, z_high, "zline"))
    if not series.volume:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">no articles</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def line_chart(series: Series, rng: Range) -> Markup:
    """One line (a composite index), with a zero line when it crosses zero."""
    start = rng.since
    end = start + timedelta(days=rng.days)
    span = (end - start).total_seconds()
    low = min([0.0, *(p.value for p in series.volume)])
    high = max([0.0, *(p.value for p in series.volume)]) or 1.0
    parts = _frame(f"{series.name}: composite index, last {rng.days} days", start, end, _fmt(high), "")
    if low < 0:
        zero = HEIGHT - PAD_BOTTOM - (0 - low) * (HEIGHT - PAD_TOP - PAD_BOTTOM) / ((high - low) or 1.0)
        parts.append(f'<line x1="{PAD_LEFT}" y1="{zero:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{zero:.1f}" class="zero"/>')
        parts.append(
            f'<text x="{PAD_LEFT - 4}" y="{HEIGHT - PAD_BOTTOM}" text-anchor="end" class="axis">{_fmt(low)}</text>'
        )
    parts.append(_polyline(series.volume, start, span, low, high, "cline"))
    if not series.volume:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">no values</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def heat_map(
    entities: Sequence[str], dynamics: Sequence[str], heat: Mapping[tuple[str, str], float], *, link: str = "entity/"
) -> Markup:
    """Rows: entities; columns: dynamics; each cell shaded by its article count and labelled with it."""
    cell_w, cell_h, label_w, head_h = 90, 22, 130, 24
    width = label_w + cell_w * len(dynamics)
    height = head_h + cell_h * max(1, len(entities))
    peak = max(heat.values(), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heat" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="entity by dynamic heat map"><title>articles per entity and dynamic</title>'
    ]
    for column, dynamic in enumerate(dynamics):
        x = label_w + column * cell_w + cell_w / 2
        parts.append(f'<text x="{x}" y="16" text-anchor="middle" class="axis">{escape(dynamic)}</text>')
    for row, entity in enumerate(entities):
        y = head_h + row * cell_h
        parts.append(
            f'<a href="{escape(link)}{escape(_path(entity))}"><text x="{label_w - 6}" y="{y + 15}" text-anchor="end" '
            f'class="label">{escape(entity)}</text></a>'
        )
        for column, dynamic in enumerate(dynamics):
            value = heat.get((entity, dynamic), 0.0)
            shade = value / peak
            fill = f"rgb({int(255 - 200 * shade)},{int(255 - 120 * shade)},{int(255 - 40 * shade)})"
            x = label_w + column * cell_w
            parts.append(
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}">'
                f"<title>{escape(entity)} × {escape(dynamic)}: {_fmt(value)}</title></rect>"
                f'<text x="{x + cell_w / 2}" y="{y + 15}" text-anchor="middle" class="cell">{_fmt(value)}</text>'
            )
    if not entities:
        parts.append(f'<text x="{width / 2}" y="{head_h + 15}" text-anchor="middle" class="empty">no entities</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped above)


def _path(name: str) -> str:
    return quote(name, safe="")
