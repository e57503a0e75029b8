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


def test_pre_keeps_its_lines_and_spaces() -> None:
    html = "<p>Run:</p><pre>\ndef greet():\n    print('hi   there')\n\n\n  done\n</pre><p>After</p>"
    assert html_to_text(html) == "Run:\n\ndef greet():\n    print('hi   there')\n\n\n  done\n\nAfter\n"


def test_pre_from_markdown_with_tags_inside() -> None:
    html = "<pre><code>a  <b>b</b>\n  c<br>d\n</code></pre>"
    assert html_to_text(html) == "a  b\n  c\nd\n"


def test_ordered_lists_are_numbered_and_nested_lists_indented() -> None:
    html = (
        "<p>Steps</p><ol><li>One</li><li>Two<ul><li>a</li><li>b<ol start='3'><li>x</li><li>y</li></ol></li></ul>"
        "</li><li>Three<br>more</li></ol><ul><li>Dot</li></ul><p>End</p>"
    )
    assert html_to_text(html) == (
        "Steps\n\n1. One\n2. Two\n   - a\n   - b\n     3. x\n     4. y\n3. Three\n   more\n\n- Dot\n\nEnd\n"
    )


def test_list_items_without_end_tags_and_with_paragraphs() -> None:
    assert html_to_text("<ol><li>A<li>B</ol>") == "1. A\n2. B\n"
    assert html_to_text("<ul><li><p>A</p></li><li><p>B</p></li></ul>") == "- A\n\n- B\n"
    assert html_to_text("<ol start='x'><li>A</li></ol>") == "1. A\n"
    assert html_to_text("<li>Stray</li><p>Next</p>") == "- Stray\n\nNext\n"


def test_images_give_their_alt_text_in_brackets_or_nothing() -> None:
    html = (
        '<p><img src="logo.png" alt=" The  Logo "> Hello<img src="spacer.gif"><img src="line.png" alt=""></p>'
        '<p><a href="https://example.com/shop"><img src="b.png" alt="Shop now"></a></p>'
    )
    assert html_to_text(html) == "[The Logo] Hello\n\n[Shop now] (https://example.com/shop)\n"


def test_spaces_collapse_across_tags() -> None:
    assert html_to_text("<p>Hello <b> bold </b> and <i>it</i>.</p><table><tr><td>A</td><td> B </td></tr></table>") == (
        "Hello bold and it.\n\nA B\n"
    )


def test_empty_html_gives_an_empty_line() -> None:
    assert html_to_text("") == "\n"
    assert html_to_text("<html><head><title>T</title></head><body> </body></html>") == "\n"
