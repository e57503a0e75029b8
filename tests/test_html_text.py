"""The text part generated from HTML."""

from __future__ import annotations

from mailcast.html_text import html_to_text


def test_readable_text_from_html() -> None:
    html = """<html><head><title>T</title><style>p {color: red}</style></head><body>
    <h1>Spring   picks</h1><script>alert(1)</script>
    <p>Hello &amp; welcome,<br>Zoë.</p>
    <ul><li>One</li><li>Two</li></ul>
    <p><a href="https://example.com/a">See more</a> or <a href="https://example.com/b">https://example.com/b</a></p>
    <p><a href="mailto:help@example.com">help@example.com</a></p>
    <div></div><div></div><p>End</p></body></html>"""
    assert html_to_text(html) == (
        "Spring picks\n\nHello & welcome,\nZoë.\n\n- One\n- Two\n\n"
        "See more (https://example.com/a) or https://example.com/b\n\nhelp@example.com\n\nEnd\n"
    )
