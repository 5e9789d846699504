"""HTML view: escaping, kept line breaks, one mark per entity; rendered by headless Chromium when present."""
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mamba_ner.html_view import PALETTE, colors_for_types, render_html, type_color, write_html

TEXT = "患者<b>有</b>糖尿病 & 高血压，\n伴咳嗽 \"3天\"。\nHbA1c 升高"
SPANS = [(10, 13, "DISE", 0.97), (16, 19, "DISE", 0.5), (22, 24, "SYMP"), (25, 29, "TIME", 0.6), (31, 36, "TEST", 0.8)]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


class _MarkCollector(HTMLParser):
    """Collects every <mark> (attributes and text) and the whole text of div.entities."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.marks, self.entities_text = [], []
        self._in_entities = self._in_mark = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "entities":
            self._in_entities = True
        elif tag == "mark":
            self._in_mark = True
            self.marks.append({**attrs, "text": ""})

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark = False
        elif tag == "div":
            self._in_entities = False

    def handle_data(self, data):
        if self._in_mark:
            self.marks[-1]["text"] += data
        if self._in_entities:
            self.entities_text.append(data)


def _parse(document: str) -> _MarkCollector:
    collector = _MarkCollector()
    collector.feed(document)
    return collector


def _check_marks(collector: _MarkCollector, text: str, spans) -> None:
    assert "".join(collector.entities_text) == text  # escaping undone, line breaks kept
    got = [(int(m["data-start"]), int(m["data-end"]), m["data-type"], m["text"]) for m in collector.marks]
    assert got == [(s[0], s[1], s[2], text[s[0] : s[1]]) for s in spans]
    for mark in collector.marks:
        assert mark["class"] == "entity" and mark["style"].startswith("background: #")


def test_render_escapes_text_and_marks_each_span():
    document = render_html(TEXT, SPANS, title="a <title> & more")
    assert "<b>有</b>" not in document and "&lt;b&gt;有&lt;/b&gt;" in document
    assert "<title>a &lt;title&gt; &amp; more</title>" in document
    collector = _parse(document)
    _check_marks(collector, TEXT, SPANS)
    assert collector.marks[0]["data-score"] == "0.9700" and "data-score" not in collector.marks[2]
    assert collector.marks[0]["title"] == "DISE 0.970"


def test_same_type_same_colour_and_legend_counts():
    collector = _parse(render_html(TEXT, SPANS))
    colours = {m["data-type"]: m["style"] for m in collector.marks}
    assert len(set(colours.values())) == 4
    assert [m["style"] for m in collector.marks[:2]] == [colours["DISE"]] * 2
    assert 'data-type="DISE" style="background: ' in render_html(TEXT, SPANS) and "DISE (2)" in render_html(TEXT, SPANS)
    assert colors_for_types(["b", "a", "a"]) == {"a": PALETTE[0], "b": PALETTE[1]}
    assert type_color("DISE") == type_color("DISE") in PALETTE


def test_overlapping_spans_are_left_out_and_bad_spans_raise(caplog):
    collector = _parse(render_html("abcdef", [(0, 3, "A"), (2, 5, "B"), (4, 6, "C")]))
    assert [(m["data-type"], m["text"]) for m in collector.marks] == [("A", "abc"), ("C", "ef")]
    assert "1 overlapping span(s)" in caplog.text
    for bad in ([(3, 3, "A")], [(0, 7, "A")], [(-1, 2, "A")], [(0, 2, "")]):
        with pytest.raises(ValueError, match="empty, untyped or outside the text"):
            render_html("abcdef", bad)


def test_no_entities_still_shows_the_text(tmp_path):
    path = write_html(tmp_path / "sub" / "doc.html", "line 1\nline <2>", [])
    collector = _parse(path.read_text(encoding="utf-8"))
    assert collector.marks == [] and "".join(collector.entities_text) == "line 1\nline <2>"
    assert "<title>doc</title>" in path.read_text(encoding="utf-8")


def _chromium() -> str | None:
    return next((path for path in CHROMIUM_CANDIDATES if Path(path).exists()), None) or shutil.which("chromium")


def test_headless_chromium_renders_the_marked_spans(tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not found (/usr/bin/chromium); install it with `apt-get install -y chromium` to run this test")
    page = write_html(tmp_path / "view.html", TEXT, SPANS, title="predictions")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<mark" in result.stdout, result.stdout[:2000]
    _check_marks(_parse(result.stdout), TEXT, SPANS)
