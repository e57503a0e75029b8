"""Text from HTML for the text/plain part of a campaign that has only HTML.

What it gives, for a plain-text reader:

- paragraphs, headings and other blocks as paragraphs apart by one blank line; `<br>` ends a line;
- `<ul>` items as `- item`, `<ol>` items as `1. item`, `2. item` … (from the list's `start`);
  a nested list is indented under the text of its item;
- `<pre>` as written: its lines and spaces kept;
- a link as `text (url)`, or just the url when the text is the url (a `mailto:` link shows the address);
- an image as its alt text in brackets, `[Logo]`, so a reader sees that a picture stands there;
  an image without alt text (or with `alt=""`, a decoration) gives nothing;
- nothing of `<head>`, `<style>` and `<script>`.

Our own, small and quick (it runs for every message): html2text is GPL.
"""

from __future__ import annotations

from html.parser import HTMLParser

BLOCKS = frozenset(
    {"p", "div", "section", "article", "table", "tr", "blockquote", "header", "footer", "pre"}
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
LISTS = frozenset({"ul", "ol"})
SKIPPED = frozenset({"head", "style", "script", "title"})


def _start(attrs: list[tuple[str, str | None]]) -> int:
    """The number of an `<ol>`'s first item."""
    try:
        return int(dict(attrs).get("start") or 1)
    except ValueError:
        return 1


class _TextParser(HTMLParser):
    """Writes text as it comes; line breaks and spaces are owed, and paid only before the next text,
    so none stands at the start or the end, nor two where one is meant."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.breaks = 0  # line breaks owed before the next text: 1 ends the line, 2 leaves a blank line
        self.space = False  # a space owed before the next text on the same line
        self.line_start = True
        self.item = False  # only a list item's marker stands on this line yet
        self.indent = ""  # what a new line starts with inside a list item
        self.lists: list[tuple[int | None, str]] = []  # each open list: next number (None for <ul>), its indent
        self.links: list[tuple[str | None, int]] = []
        self.skip = 0
        self.pre = 0
        self.pre_start = False  # just after <pre>, whose first line break HTML ignores

    def _write(self, text: str) -> None:
        if self.breaks:
            if self.out:
                self.out.append("\n" * self.breaks + self.indent)
                self.line_start = True
            self.breaks = 0
        elif self.space and not self.line_start:
            self.out.append(" ")
        self.out.append(text)
        self.space = self.line_start = self.item = False

    def _break(self, count: int) -> None:
        if count == 1 or not self.item:  # a paragraph that opens a list item stays on the marker's line
            self.breaks = max(self.breaks, count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.pre_start = tag == "pre"
        if tag in SKIPPED:
            self.skip += 1
        elif self.skip:
            return
        elif tag in BLOCKS:
            self._break(2)
            if tag == "pre":
                self.pre += 1
        elif tag in LISTS:
            self._break(1 if self.lists else 2)
            self.lists.append((_start(attrs) if tag == "ol" else None, self.indent))
        elif tag == "li":
            self._list_item()
        elif tag == "br":
            self.breaks = self.breaks + 1 if self.pre else min(self.breaks + 1, 2)
        elif tag == "hr":
            self._break(2)
            self._write("---")
            self._break(2)
        else:
            self._inline(tag, attrs)

    def _inline(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self.space = True
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))
        elif tag == "img":
            alt = " ".join((dict(attrs).get("alt") or "").split())
            if alt:
                self._write(f"[{alt}]")

    def _list_item(self) -> None:
        self._break(1)
        number, base = self.lists[-1] if self.lists else (None, "")
        marker = "-" if number is None else f"{number}."
        if number is not None:
            self.lists[-1] = (number + 1, base)
        self.indent = base
        self._write(marker)
        if self.lists:  # the item's further lines stand under its text, until its list ends
            self.indent = base + " " * (len(marker) + 1)
        self.space = self.item = True

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skip = max(self.skip - 1, 0)
        elif self.skip:
            return
        elif tag in BLOCKS:
            self._break(2)
            if tag == "pre" and self.pre:
                self.pre -= 1
        elif tag in LISTS and self.lists:
            _, self.indent = self.lists.pop()
            self._break(1 if self.lists else 2)
        elif tag == "a" and self.links:
            self._end_link()

    def _end_link(self) -> None:
        href, start = self.links.pop()
        if not href or href.startswith("#"):
            return
        label = "".join(self.out[start:]).strip()
        target = href.removeprefix("mailto:")
        if label and label not in (href, target):
            self.space = True
            self._write(f"({target})")
        elif not label:
            self._write(target)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self._preformatted(data)
            return
        words = data.split()
        if data[:1].isspace():
            self.space = True
        if words:
            self._write(" ".join(words))
            self.space = data[-1].isspace()

    def _preformatted(self, data: str) -> None:
        if self.pre_start:
            data = data.removeprefix("\n")
            self.pre_start = False
        for index, line in enumerate(data.split("\n")):
            if index:
                self.breaks += 1
            if line:
                self._write(line)


def html_to_text(html: str) -> str:
    """The text of `html` as a plain-text reader should see it (see the module's docstring)."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return "".join(parser.out) + "\n"
