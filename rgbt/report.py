"""Run reports: one list of blocks rendered as Markdown, as self-contained HTML and as JSON.

A report is built as a sequence of :class:`Block` (heading, paragraph, table, figure). The
Markdown links figures by relative path; the HTML embeds them as base64 data URIs so the single
file can be mailed or archived; the JSON holds the machine-readable numbers next to them.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rgbt.atomic import atomic_write_text


@dataclass
class Block:
    """One report element.

    ``kind`` is ``heading`` (``text``, ``level``), ``paragraph`` (``text``), ``table``
    (``columns``, ``rows``) or ``figure`` (``path`` to a PNG, ``text`` = caption).
    """

    kind: str
    text: str = ""
    level: int = 2
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    path: Path | None = None


def heading(text: str, level: int = 2) -> Block:
    return Block("heading", text=text, level=level)


def paragraph(text: str) -> Block:
    return Block("paragraph", text=text)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Block:
    return Block("table", columns=list(columns), rows=[list(r) for r in rows])


def figure(path: str | os.PathLike[str], caption: str) -> Block:
    return Block("figure", text=caption, path=Path(path))


def format_cell(value: Any) -> str:
    """Numbers with two decimals, missing values as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base`` (the report's folder)."""
    out: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(f"{'#' * block.level} {block.text}\n")
        elif block.kind == "paragraph":
            out.append(f"{block.text}\n")
        elif block.kind == "table":
            out.append("| " + " | ".join(block.columns) + " |")
            out.append("|" + "|".join("---" for _ in block.columns) + "|")
            out.extend("| " + " | ".join(format_cell(v) for v in row) + " |" for row in block.rows)
            out.append("")
        elif block.kind == "figure" and block.path is not None and block.path.is_file():
            rel = os.path.relpath(block.path, base)
            out.append(f"![{block.text}]({rel})\n\n*{block.text}*\n")
    return "\n".join(out)


def render_html(blocks: Sequence[Block], title: str) -> str:
    """A single self-contained HTML page (figures embedded as base64 PNG)."""
    body: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif block.kind == "paragraph":
            body.append(f"<p>{html.escape(block.text)}</p>")
        elif block.kind == "table":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif block.kind == "figure" and block.path is not None and block.path.is_file():
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.text)}">'
                f"<figcaption>{html.escape(block.text)}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 10px;"
        "text-align:right}th{background:#eee}img{max-width:100%}figcaption{font-style:italic;color:#555}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _finite(value: Any) -> Any:
    """JSON has no NaN: missing numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_report(out_dir: str | os.PathLike[str], blocks: Sequence[Block], data: dict[str, Any],
                 title: str = "rgbt report") -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and ``report.json`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    paths = {"md": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "report.json"}
    atomic_write_text(paths["md"], render_markdown(blocks, out_dir))
    atomic_write_text(paths["html"], render_html(blocks, title))
    atomic_write_text(paths["json"], json.dumps(_finite(data), indent=2) + "\n")
    return paths
