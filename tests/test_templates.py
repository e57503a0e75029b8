"""Templates: variables found by parsing, strict rendering, escaping only where HTML is."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcast.campaign import Campaign
from mailcast.campaign_file import load_campaign
from mailcast.templates import TemplateRenderError, check_variables, load_templates


def campaign(tmp_path: Path, *, html: str | None = None, text: str | None = None, markdown: str | None = None,
             subject: str = "Hi {{ name }}", extra: str = "") -> Campaign:  # fmt: skip
    parts = []
    for kind, body in (("html", html), ("text", text), ("markdown", markdown)):
        if body is not None:
            (tmp_path / f"body.{kind}").write_text(body, encoding="utf-8")
            parts.append(f"{kind}: body.{kind}")
    (tmp_path / "recipients.csv").write_text("email,name\na@example.com,A\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        f'from: a@example.com\nsubject: "{subject}"\ntemplate: {{{", ".join(parts)}}}\nrecipients: recipients.csv\n'
        + extra,
        encoding="utf-8",
    )
    return load_campaign(tmp_path / "c.yaml")


def test_variables_found_by_parsing(tmp_path: Path) -> None:
    body = "{% set greeting = 'Hi' %}{{ greeting }} {% if vip %}{{ name }}{% endif %}{% for x in items %}{{ x }}{% endfor %}"
    templates, problems = load_templates(campaign(tmp_path, text=body))
    assert problems == []
    assert templates.variables["body.text"] == {"vip", "name", "items"}
    assert templates.variables["subject"] == {"name"}


def test_jinja_globals_work_in_every_template(tmp_path: Path) -> None:
    body = "{% for i in range(3) %}{{ i }}{% endfor %} {% set ns = namespace(n=name) %}{{ ns.n }}"
    templates, problems = load_templates(campaign(tmp_path, text=body, subject="{{ dict(a=name) }}"))
    assert problems == []
    for name in ("Zoë", "Ada"):  # each row renders with the same globals and its own values
        rendered = templates.render({"name": name}, "someone@example.com")
        assert rendered.text == f"012 {name}" and rendered.subject == str({"a": name})


def test_missing_variable_and_unused_column(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, html="<p>{{ coupon }}</p>"))
    errors, warnings = check_variables(templates, ["email", "name", "city"], csv_file="recipients.csv")
    assert len(errors) == 1
    assert "'coupon'" in errors[0].message and errors[0].file == "body.html"
    assert [w.message for w in warnings] == ["column 'city' is not used by any template"]


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    body = "\n".join(["<p>ok</p>"] * 11 + ["{{ name }"]) + "\n"
    _, problems = load_templates(campaign(tmp_path, html=body))
    assert [(p.file, p.line) for p in problems] == [("body.html", 12)]


def test_subject_syntax_error_names_the_key(tmp_path: Path) -> None:
    _, problems = load_templates(campaign(tmp_path, text="x", subject="Hi {{ name"))
    assert (problems[0].key, problems[0].file, problems[0].line) == ("subject", "c.yaml", 2)


def test_missing_variable_in_the_subject_names_the_campaign_file_line(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="x", subject="Hi {{ nickname }}"))
    errors, _ = check_variables(templates, ["email", "name"], csv_file="recipients.csv")
    assert [(e.file, e.line, e.key) for e in errors] == [("c.yaml", 2, "subject")]


def test_the_address_column_is_used_whatever_its_name(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="{{ name }}"))
    _, warnings = check_variables(templates, ["mail", "name"], csv_file="r.csv", email_column="mail")
    assert warnings == []


def test_only_html_is_escaped_and_values_are_never_templates(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, html="<p>{{ name }}</p>", text="{{ name }}", subject="{{ name }}"))
    rendered = templates.render({"name": "<b>&{{ 7*7 }}"}, "a@example.com")
    assert rendered.html == "<p>&lt;b&gt;&amp;{{ 7*7 }}</p>"
    assert rendered.text == "<b>&{{ 7*7 }}"
    assert rendered.subject == "<b>&{{ 7*7 }}"


def test_markdown_gives_html_and_text(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, markdown="# Hello {{ name }}\n\n*soon*\n"))
    rendered = templates.render({"name": "Zoë"}, "a@example.com")
    assert rendered.html is not None and "<h1>Hello Zoë</h1>" in rendered.html and "<em>soon</em>" in rendered.html
    assert rendered.text == "Hello Zoë\n\nsoon\n"


def test_html_only_gets_its_text_part_when_rendered(tmp_path: Path) -> None:
    html = "<h1>Hi {{ name }}</h1><p>See <a href='https://example.com/x'>the picks</a></p>"
    templates, _ = load_templates(campaign(tmp_path, html=html))
    rendered = templates.render({"name": "Zoë"}, "a@example.com")
    assert rendered.html == "<h1>Hi Zoë</h1><p>See <a href='https://example.com/x'>the picks</a></p>"
    assert rendered.text == "Hi Zoë\n\nSee the picks (https://example.com/x)\n"


def test_a_text_template_is_kept_beside_the_html(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, html="<p>{{ name }}</p>", text="Text: {{ name }}"))
    assert templates.render({"name": "A"}, "a@example.com").text == "Text: A"


def test_the_parts_get_the_unsubscribe_url_percent_encoded(tmp_path: Path) -> None:
    extra = 'unsubscribe: {url: "https://example.com/u?n={{ name }}&e={{ email | urlencode }}"}\n'
    html = '<a href="{{ unsubscribe_url }}">Leave</a>'
    templates, _ = load_templates(campaign(tmp_path, html=html, subject="{{ unsubscribe_url }}", extra=extra))
    rendered = templates.render({"name": "Zoë Ann"}, "a@example.com")
    url = "https://example.com/u?n=Zo%C3%AB%20Ann&e=a%40example.com"
    assert rendered.unsubscribe_url == "https://example.com/u?n=Zoë Ann&e=a%40example.com"  # as rendered, for check
    assert rendered.subject == url
    assert rendered.html == f'<a href="{url.replace("&", "&amp;")}">Leave</a>'
    assert rendered.text == f"Leave ({url})\n"


def test_markdown_values_show_as_they_are_and_make_no_tags_or_links(tmp_path: Path) -> None:
    body = "# Hi {{ name }}\n\n[Our shop](https://example.com/shop?who={{ email }})\n"
    templates, _ = load_templates(campaign(tmp_path, markdown=body))
    name = "<script>x</script> [win](https://evil.example) *A&B*"
    rendered = templates.render({"name": name}, "a+b@example.com")
    assert rendered.html is not None
    assert "<script>" not in rendered.html and 'evil.example"' not in rendered.html and "<em>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt; [win](https://evil.example) *A&amp;B*" in rendered.html
    assert '<a href="https://example.com/shop?who=a+b@example.com">Our shop</a>' in rendered.html
    assert rendered.text is not None and name in rendered.text


def test_template_errors_while_rendering_are_row_problems(tmp_path: Path) -> None:
    templates, problems = load_templates(campaign(tmp_path, text="{{ name }} {{ 1 / 0 }}"))
    assert problems == []
    with pytest.raises(TemplateRenderError, match="ZeroDivisionError"):
        templates.render({"name": "A"}, "a@example.com")


def test_include_and_extends_are_refused_with_their_line(tmp_path: Path) -> None:
    _, problems = load_templates(campaign(tmp_path, html="<p>{{ name }}</p>\n{% include 'footer.html' %}\n"))
    assert [(p.file, p.line) for p in problems] == [("body.html", 2)] and "include" in problems[0].message


def test_unsubscribe_url_is_rendered_and_urlencoded(tmp_path: Path) -> None:
    extra = 'unsubscribe: {url: "https://example.com/u?e={{ email | urlencode }}"}\n'
    templates, _ = load_templates(campaign(tmp_path, text="Bye: {{ unsubscribe_url }}", extra=extra))
    rendered = templates.render({"name": "A"}, "a+b@example.com")
    assert rendered.unsubscribe_url == "https://example.com/u?e=a%2Bb%40example.com"
    assert rendered.text == "Bye: https://example.com/u?e=a%2Bb%40example.com"


def test_strict_undefined_at_render(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="{{ name.first }}"))
    with pytest.raises(TemplateRenderError):
        templates.render({}, "a@example.com")


def test_a_missing_variable_names_the_line_where_it_is_first_used(tmp_path: Path) -> None:
    body = "<p>{{ name }}</p>\n<p>Hello</p>\n\n<p>{% if coupon %}{{ coupon }}{% endif %} {{ city }}</p>\n{{ coupon }}\n"
    templates, _ = load_templates(campaign(tmp_path, html=body))
    errors, _ = check_variables(templates, ["email", "name"], csv_file="recipients.csv")
    assert [(e.file, e.line) for e in errors] == [("body.html", 4), ("body.html", 4)]
    assert "'city'" in errors[0].message and "'coupon'" in errors[1].message
    assert all("add a column" in e.message for e in errors)


def test_unknown_filters_and_tests_are_found_at_compile_time_with_their_lines(tmp_path: Path) -> None:
    body = "{{ name | capitalise }}\n{% if false %}\n{{ name | frobnicate }}\n{% endif %}\n{% if name is frobnicated %}x{% endif %}\n"
    templates, problems = load_templates(campaign(tmp_path, text=body))
    assert [(p.file, p.line) for p in problems] == [("body.text", 1), ("body.text", 3), ("body.text", 5)]
    assert "no Jinja filter is named 'capitalise' (did you mean 'capitalize'?)" in problems[0].message
    assert "no Jinja filter is named 'frobnicate'" in problems[1].message  # in a branch no row takes
    assert "no Jinja test is named 'frobnicated'" in problems[2].message
    assert "body.text" not in templates.variables  # not compiled, so never rendered


def test_an_unknown_filter_in_the_subject_names_the_subject_key(tmp_path: Path) -> None:
    _, problems = load_templates(campaign(tmp_path, text="x", subject="Hi {{ name | capitalise }}"))
    assert [(p.file, p.line, p.key) for p in problems] == [("c.yaml", 2, "subject")]
    assert problems[0].message.startswith("subject: no Jinja filter is named 'capitalise'")


def test_errors_jinja_finds_only_when_compiling_are_problems(tmp_path: Path) -> None:
    body = "Hi {{ name }}\n\n{% for loop in [1] %}{% endfor %}\n"
    _, problems = load_templates(campaign(tmp_path, text=body))
    assert [(p.file, p.line) for p in problems] == [("body.text", 3)]
    assert "special loop variable" in problems[0].message


def test_a_template_jinja_cannot_turn_into_python_is_a_problem(tmp_path: Path) -> None:
    _, problems = load_templates(campaign(tmp_path, text="{% macro m(a, a) %}{% endmacro %}{{ name }}"))
    assert [(p.file, p.line) for p in problems] == [("body.text", None)]
    assert "Jinja cannot compile this template" in problems[0].message


def test_a_render_error_names_the_template_line(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="Hi\n\n{{ '%d' | format(name) }}\n"))
    with pytest.raises(TemplateRenderError, match=r"^body\.text:3: TypeError: %d format"):
        templates.render({"name": "A"}, "a@example.com")


def test_a_render_error_in_the_subject_names_the_campaign_file_line(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="x", subject="{{ name.first }}"))
    with pytest.raises(TemplateRenderError, match=r"^subject \(c\.yaml:2\): 'str object' has no attribute 'first'"):
        templates.render({"name": "A"}, "a@example.com")


def test_unsubscribe_url_without_an_unsubscribe_section_is_an_error(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, text="{{ name }}\n\nBye: {{ unsubscribe_url }}\n"))
    errors, _ = check_variables(templates, ["email", "name", "unsubscribe_url"], csv_file="recipients.csv")
    assert [(e.file, e.line) for e in errors] == [("body.text", 3)]
    assert "'unsubscribe_url'" in errors[0].message and "no unsubscribe section" in errors[0].message
    assert "add one (unsubscribe: with url: or mailto:)" in errors[0].message


def test_unsubscribe_url_with_a_mailto_only_section_is_fine(tmp_path: Path) -> None:
    extra = "unsubscribe: {mailto: stop@example.com}\n"
    templates, _ = load_templates(campaign(tmp_path, text="{{ name }} {{ unsubscribe_url }}", extra=extra))
    errors, _ = check_variables(templates, ["email", "name"], csv_file="recipients.csv")
    assert errors == []
    assert (
        templates.render({"name": "A"}, "a@example.com").unsubscribe_url
        == "mailto:stop@example.com?subject=unsubscribe"
    )


def test_a_single_line_break_in_markdown_is_a_line_break(tmp_path: Path) -> None:
    templates, _ = load_templates(campaign(tmp_path, markdown="Dear {{ name }},\nsee you.\n\nBye\n"))
    rendered = templates.render({"name": "Ann"}, "a@example.com")
    assert rendered.html == "<p>Dear Ann,<br />\nsee you.</p>\n<p>Bye</p>\n"
    assert rendered.text == "Dear Ann,\nsee you.\n\nBye\n"


def test_to_name_cc_and_bcc_are_rendered_per_row(tmp_path: Path) -> None:
    extra = (
        'to_name: "  {{ name }}  "\n'
        'cc: ["{{ boss }}", team@example.com, "{{ boss }}"]\n'
        'bcc: ["{{ email }}", Archive@Example.com, team@example.com, "{{ archive }}"]\n'
    )
    templates, problems = load_templates(campaign(tmp_path, text="x", extra=extra))
    assert problems == []
    rendered = templates.render(
        {"name": "Zoë", "boss": " B@example.com ", "archive": "archive@example.com"}, "a@example.com"
    )
    assert rendered.to_name == "Zoë"
    assert rendered.cc == ("B@example.com", "team@example.com")  # each once
    assert rendered.bcc == ("Archive@example.com",)  # not To, not a Cc, not twice
    rendered = templates.render({"name": " ", "boss": "", "archive": ""}, "a@example.com")
    assert (rendered.to_name, rendered.cc) == ("", ("team@example.com",))


def test_a_bad_rendered_cc_names_its_key_and_line(tmp_path: Path) -> None:
    extra = "cc:\n  - team@example.com\n  - '{{ boss }}'\n"
    templates, _ = load_templates(campaign(tmp_path, text="x", extra=extra))
    with pytest.raises(TemplateRenderError, match=r"cc\.1 \(c\.yaml:7\): \"boss@\" is not a valid address"):
        templates.render({"name": "A", "boss": "boss@"}, "a@example.com")


def test_a_cc_template_with_a_syntax_error_is_a_problem_at_its_line(tmp_path: Path) -> None:
    extra = "bcc:\n  - team@example.com\n  - '{{ boss '\n"
    _, problems = load_templates(campaign(tmp_path, text="x", extra=extra))
    assert [(p.file, p.line, p.key) for p in problems] == [("c.yaml", 7, "bcc.1")]


def test_images_named_by_the_template_are_checked_from_its_source(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(b"png")
    html = (
        '<img src="logo.png">\n'
        "<!-- <img src='old.png'> -->\n"
        '<img src="https://example.com/x.png"><img src="cid:x@y"><img src="//cdn.example.com/y.png">\n'
        '<img alt="gone" src="gone.png">\n'
        '<img src="{{ name }}.png">\n'
    )
    templates, problems = load_templates(campaign(tmp_path, html=html))
    assert [(p.file, p.line) for p in problems] == [("body.html", 4)] and "gone.png is not found" in problems[0].message
    assert templates.images is not None and templates.images.shared == {(tmp_path / "logo.png").resolve()}


def test_markdown_images_are_checked_from_the_source_and_inlined(tmp_path: Path) -> None:
    (tmp_path / "my logo.png").write_bytes(b"png")
    body = "# Hi\n\n![Logo](<my logo.png>)\n\n![Gone](gone.png)\n![Web](https://example.com/a.png)\n"
    _, problems = load_templates(campaign(tmp_path, markdown=body))
    assert [(p.file, p.line) for p in problems] == [("body.markdown", 5)]
    (tmp_path / "body.markdown").write_text(body.replace("![Gone](gone.png)\n", ""), encoding="utf-8")
    templates, problems = load_templates(load_campaign(tmp_path / "c.yaml"))
    assert problems == []
    rendered = templates.render({"name": "A"}, "a@example.com")
    [image] = rendered.images
    assert image.path == (tmp_path / "my logo.png").resolve() and image.shared
    assert rendered.html is not None and f'src="cid:{image.content_id}"' in rendered.html
    assert 'src="https://example.com/a.png"' in rendered.html


def test_an_image_a_row_names_is_checked_per_row(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"png")
    templates, problems = load_templates(campaign(tmp_path, html='<p>x</p><img src="{{ name }}.png">'))
    assert problems == []
    [image] = templates.render({"name": "a"}, "a@example.com").images
    assert not image.shared
    with pytest.raises(
        TemplateRenderError, match=r"body\.html: the image \.\./a\.png is outside the campaign's folder"
    ):
        templates.render({"name": "../a"}, "a@example.com")
    with pytest.raises(TemplateRenderError, match=r"the image b\.png is not found"):
        templates.render({"name": "b"}, "a@example.com")
