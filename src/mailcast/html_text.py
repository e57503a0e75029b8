"""Text from HTML for the text/plain part: readable paragraphs, lists and links (text (url))."""

from __future__ import annotations

import re
from html.parser import HTMLParser

BLOCKS = frozenset(
    {"p", "div", "section", "article", "table", "tr", "ul", "ol", "blockquote", "header", "footer", "pre"}
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
SKIPPED = frozenset({"head", "style", "script", "title"})


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skip += 1
        elif tag in BLOCKS or tag in HEADINGS:
            self.out.append("\n\n")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.out.append("\n\n---\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skip = max(self.skip - 1, 0)
        elif tag in BLOCKS or tag in HEADINGS:
            self.out.append("\n\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith("#"):
                target = href.removeprefix("mailto:") if href.startswith("mailto:") else href
                if label and label not in (href, target):
                    self.out.append(f" ({target})")
                elif not label:
                    self.out.append(target)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    text = "".join(parser.out)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n"
