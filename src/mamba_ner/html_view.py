"""An HTML page showing entities highlighted in their text, in the style of spaCy's displaCy.

    html = render_html("患者有糖尿病。", [(3, 6, "DISE", 0.97)], title="note 1")
    write_html("note1.html", text, spans)

Each entity is `<mark class="entity" data-type="DISE" data-start="3" data-end="6" data-score="0.9700"
title="DISE 0.970">糖尿病</mark>`: the mark holds exactly `text[start:end]` (the type label is drawn
by CSS from `data-type`, so it is not part of the page text), with one background colour per type
and a legend with counts on top. The text is HTML-escaped and its line breaks are kept
(`white-space: pre-wrap`). Standard library only; no script runs in the page.
"""
from __future__ import annotations

import html
import logging
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

logger = logging.getLogger(__name__)

# displaCy's entity colours first, then more pastels so that ~20 types stay distinct.
PALETTE = (
    "#7aecec", "#bfeeb7", "#feca74", "#ff9561", "#aa9cfc", "#c887fb", "#9cc9cc", "#ffeb80", "#ff8197", "#f0d0ff",
    "#bfe1d9", "#e4e7d2", "#a5d8ff", "#ffc9c9", "#d8f5a2", "#fcc2d7", "#99e9f2", "#ffd8a8", "#d0bfff", "#c3fae8",
)

_STYLE = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; }
h1 { font-size: 1.2em; }
.legend { margin-bottom: 1.5em; }
.legend-item { display: inline-block; padding: 0.2em 0.6em; margin: 0 0.4em 0.4em 0; border-radius: 0.35em; font-size: 0.85em; }
.entities { white-space: pre-wrap; line-height: 2.5; font-size: 1em; }
mark.entity { padding: 0.25em 0.35em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1; }
mark.entity::after { content: attr(data-type); font-size: 0.6em; font-weight: bold; line-height: 1;
  text-transform: uppercase; vertical-align: middle; margin-left: 0.4em; }
"""


def type_color(entity_type: str) -> str:
    """A stable colour for a type seen without a colour map (hash of its name into `PALETTE`)."""
    return PALETTE[zlib.crc32(entity_type.encode("utf-8")) % len(PALETTE)]


def colors_for_types(types: Iterable[str]) -> dict[str, str]:
    """Distinct colours for the given types, in sorted order (reuse one map for many pages)."""
    return {entity_type: PALETTE[i % len(PALETTE)] for i, entity_type in enumerate(sorted(set(types)))}


def render_html(text: str, spans: Iterable[Sequence], title: str | None = None, colors: dict[str, str] | None = None) -> str:
    """A standalone HTML page with `spans` highlighted in `text`.

    Args:
        text (`str`): the document.
        spans: `(start, end, type)` or `(start, end, type, score)` character offsets (end exclusive).
            Spans overlapping an earlier (kept) one are left out and logged.
        title (`str`, *optional*): page title and heading.
        colors (`dict[str, str]`, *optional*): CSS colour per type; default `colors_for_types`
            of the types present.

    Returns:
        the HTML document as a string.

    Raises:
        `ValueError` for a span that is empty or outside the text.
    """
    spans = sorted((tuple(span) for span in spans), key=lambda span: (span[0], -span[1]))
    for span in spans:
        if not (0 <= span[0] < span[1] <= len(text)) or not span[2]:
            raise ValueError(f"span {span} is empty, untyped or outside the text (length {len(text)})")
    kept, skipped, position = [], 0, 0
    for span in spans:
        if span[0] < position:
            skipped += 1
        else:
            kept.append(span)
            position = span[1]
    if skipped:
        logger.warning("%d overlapping span(s) left out of the HTML view (%d shown)", skipped, len(kept))
    counts = Counter(span[2] for span in kept)
    colors = {**colors_for_types(counts), **(colors or {})}

    body, position = [], 0
    for span in kept:
        start, end, entity_type = span[:3]
        score = span[3] if len(span) > 3 and span[3] is not None else None
        body.append(html.escape(text[position:start]))
        attributes = {"class": "entity", "data-type": entity_type, "data-start": start, "data-end": end}
        tooltip = entity_type
        if score is not None:
            attributes["data-score"] = f"{float(score):.4f}"
            tooltip += f" {float(score):.3f}"
        attributes["title"] = tooltip
        attributes["style"] = f"background: {colors.get(entity_type) or type_color(entity_type)}"
        rendered = " ".join(f'{name}="{html.escape(str(value), quote=True)}"' for name, value in attributes.items())
        body.append(f"<mark {rendered}>{html.escape(text[start:end])}</mark>")
        position = end
    body.append(html.escape(text[position:]))

    legend = "".join(
        f'<span class="legend-item" data-type="{html.escape(t, quote=True)}" '
        f'style="background: {colors.get(t) or type_color(t)}">{html.escape(t)} ({n})</span>'
        for t, n in sorted(counts.items())
    )
    title_html = html.escape(title if title is not None else "Entities")
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title_html}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{title_html}</h1>\n<div class=\"legend\">{legend}</div>\n"
        f"<div class=\"entities\">{''.join(body)}</div>\n</body>\n</html>\n"
    )


def write_html(path: str | Path, text: str, spans: Iterable[Sequence], title: str | None = None, colors: dict[str, str] | None = None) -> Path:
    """Write `render_html(text, spans, title, colors)` to `path` (UTF-8); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(text, spans, title if title is not None else path.stem, colors), encoding="utf-8")
    return path


__all__ = ["PALETTE", "colors_for_types", "render_html", "type_color", "write_html"]
