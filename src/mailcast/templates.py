"""Jinja2 templates: compiled once per run, their variables found by parsing, rendered per row.

CSV values are data, never templates: the HTML part is autoescaped, and in a markdown body
every value has its markdown punctuation escaped, so a value can neither open an HTML tag nor
make a link; the text part takes values as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateError

from mailcast.campaign import Campaign
from mailcast.errors import ExitCode, MailcastError, Problem

ALWAYS_DEFINED = frozenset({"email", "unsubscribe_url"})


class TemplateRenderError(MailcastError):
    """A template could not be rendered for one row."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str | None
    text: str | None
    unsubscribe_url: str


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def _markdown_literal(value: object) -> str:
    """A value as markdown that shows it as it is: every ASCII punctuation mark backslash-escaped."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(value))


def _environment(*, autoescape: bool = False, markdown: bool = False) -> Environment:
    env = Environment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        finalize=_markdown_literal if markdown else None,
    )
    env.filters["urlencode"] = _urlencode
    return env


class TemplateSet:
    """The campaign's compiled templates and the variables each one uses."""

    def __init__(
        self,
        sources: dict[str, tuple[str, Template, frozenset[str]]],
        markdown: bool,
        mailto: str | None,
        places: dict[str, tuple[str, int | None]],
    ) -> None:
        # label -> (part, compiled template, variables); part is subject | html | text | markdown | url
        self._parts = {part: (label, template) for label, (part, template, _) in sources.items()}
        self.variables: dict[str, set[str]] = {label: set(names) for label, (_, _, names) in sources.items()}
        self.places = places  # label -> (file, line) where the template stands
        self._mailto_url = f"mailto:{mailto}?subject=unsubscribe" if mailto else ""
        self._markdown_renderer = None
        if markdown:
            from markdown_it import MarkdownIt

            self._markdown_renderer = MarkdownIt("commonmark")

    def _render(self, part: str, context: Mapping[str, str]) -> str | None:
        entry = self._parts.get(part)
        if entry is None:
            return None
        label, template = entry
        try:
            return template.render(context)
        except TemplateError as exc:
            raise TemplateRenderError(f"{label}: {exc}", hint="Fix the template or the row's values.") from None
        except Exception as exc:  # a template's own expression failed, such as {{ 1 / 0 }} or a bad format
            raise TemplateRenderError(
                f"{label}: {type(exc).__name__}: {exc}", hint="Fix the template or the row's values."
            ) from None

    def render(self, values: Mapping[str, str], email: str) -> Rendered:
        context = dict(values)
        context["email"] = email
        url = self._render("url", context)
        unsubscribe_url = url if url is not None else self._mailto_url
        context["unsubscribe_url"] = unsubscribe_url
        subject = self._render("subject", context) or ""
        html = self._render("html", context)
        text = self._render("text", context)
        source = self._render("markdown", context)
        if source is not None and self._markdown_renderer is not None:
            html = self._markdown_renderer.render(source)
            if text is None:
                from mailcast.html_text import html_to_text

                text = html_to_text(html)
        return Rendered(subject, html, text, unsubscribe_url)


def _urlencode(value: object) -> str:
    return quote(str(value), safe="")


def load_templates(campaign: Campaign) -> tuple[TemplateSet, list[Problem]]:
    """Compile subject, bodies and unsubscribe URL; a syntax error names its file (or key) and line.

    The set holds every template that compiled, so the variables of the others are still
    checked; render only when there are no problems.
    """
    html_env, text_env, markdown_env = _environment(autoescape=True), _environment(), _environment(markdown=True)
    campaign_file = campaign.path.name
    problems: list[Problem] = []
    sources: dict[str, tuple[str, Template, frozenset[str]]] = {}
    places: dict[str, tuple[str, int | None]] = {}

    def compile_source(label: str, part: str, source: str, env: Environment, file: str, key: str | None) -> None:
        places[label] = (file, None if key is None else campaign.line_of(key))

        def problem(message: str, lineno: int) -> Problem:
            if key is None:
                return Problem(message, file=file, line=lineno)
            return Problem(f"{label}: {message}", file=file, line=campaign.line_of(key), key=key)

        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            problems.append(problem(f"Jinja syntax error: {exc.message}; fix the template", exc.lineno or 1))
            return
        if list(meta.find_referenced_templates(tree)):
            block = next(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)))
            problems.append(
                problem(
                    "a template is one file: {% include %}, {% extends %} and {% import %} are not supported; "
                    "put the content in this file",
                    block.lineno,
                )
            )
            return
        sources[label] = (part, env.from_string(source), frozenset(meta.find_undeclared_variables(tree)))

    compile_source("subject", "subject", campaign.subject, text_env, campaign_file, "subject")
    if campaign.unsubscribe and campaign.unsubscribe.url:
        compile_source("unsubscribe.url", "url", campaign.unsubscribe.url, text_env, campaign_file, "unsubscribe.url")
    files = campaign.template
    for part, relative, env in (
        ("html", files.html, html_env),
        ("text", files.text, text_env),
        ("markdown", files.markdown, markdown_env),
    ):
        if not relative:
            continue
        try:
            source = campaign.resolve(relative).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            problems.append(Problem(f"{relative} is not UTF-8; save it as UTF-8", file=relative, line=1))
            continue
        except OSError as exc:
            problems.append(Problem(f"cannot read {relative}: {exc.strerror}", file=relative))
            continue
        compile_source(relative, part, source, env, relative, None)
    mailto = campaign.unsubscribe.mailto if campaign.unsubscribe else None
    return TemplateSet(sources, bool(files.markdown), mailto, places), problems


def check_variables(
    templates: TemplateSet, columns: list[str], *, csv_file: str, email_column: str = "email"
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings): a variable with no column is an error; a column no template uses, a warning."""
    available = set(columns) | ALWAYS_DEFINED
    errors: list[Problem] = []
    used: set[str] = set()
    for label, names in templates.variables.items():
        used |= names
        file, line = templates.places.get(label, (label, None))
        for name in sorted(names - available):
            errors.append(
                Problem(
                    f"{label} uses the variable {name!r}, but {csv_file} has no such column; "
                    f"add a column {name!r} to {csv_file} or remove it from {label}",
                    file=file,
                    line=line,
                    key=None if file == label else label,
                )
            )
    warnings = [
        Problem(f"column {name!r} is not used by any template", file=csv_file, line=1)
        for name in columns
        if name and name not in used and name != email_column and name not in ALWAYS_DEFINED
    ]
    return errors, warnings
