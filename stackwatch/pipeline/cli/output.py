"""Printing query results as an aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

__all__ = ["FORMATS", "render"]

FORMATS = ("table", "csv", "json")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[object]], format: str = "table") -> str:
    if format == "json":
        return json.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows],
            default=_cell,
            ensure_ascii=False,
            indent=1,
        )
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(value) for value in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    cells = [[_cell(value).replace("\n", " ")[:120] for value in row] for row in rows]
    widths = [max([len(name)] + [len(row[index]) for row in cells]) for index, name in enumerate(columns)]
    line = "  ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True))
    rule = "  ".join("-" * width for width in widths)
    body = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return "\n".join([line, rule, *body, footer])
