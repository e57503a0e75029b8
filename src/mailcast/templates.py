"""Jinja2 templates: compiled once per run, their variables found by parsing, rendered per row.

Rendering gives every part a message has: the HTML (from the markdown body when that is what the
campaign has) and always a text part, made from the HTML when the campaign has no text template.

CSV values are data, never templates: the HTML part is autoescaped, and in a markdown body
every value has its markdown punctuation escaped, so a value can neither open an HTML tag nor
make a link; the text part takes values as they are.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateError

from mailcast.campaign import Campaign
from mailcast.errors import ExitCode, MailcastError, Problem
from mailcast.html_text import html_to_text
from mailcast.message import encode_uri

ALWAYS_DEFINED = frozenset({"email", "unsubscribe_url"})


class TemplateRenderError(MailcastError):
    """A template could not be rendered for one row."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class Rendered:
    """One row's parts. `text` is always there: made from the HTML when the campaign has no text template.
    `unsubscribe_url` is the URL as rendered; the parts hold it percent-encoded, as the header will."""

    subject: str
    html: str | None
    text: str
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


@dataclass(frozen=True)
class TemplatePlace:
    """Where a template stands: a file of its own, or a key of the campaign file (at the key's line)."""

    file: str
    line: int | None = None
    key: str | None = None

    def problem(self, label: str, message: str, lineno: int | None, *, named: bool = False) -> Problem:
        """A problem at line `lineno` of the template: that line of its file, or the key's line.

        The message names the template unless it does so itself (`named`).
        """
        if self.key is None:
            return Problem(message, file=self.file, line=lineno)
        return Problem(message if named else f"{label}: {message}", file=self.file, line=self.line, key=self.key)

    def describe(self, label: str, lineno: int | None) -> str:
        """`body.html:4`, or `subject (campaign.yaml:3)`, for messages about one row."""
        if self.key is not None:
            return f"{label} ({self.file}:{self.line})" if self.line else f"{label} ({self.file})"
        return f"{self.file}:{lineno}" if lineno else self.file


@dataclass(frozen=True)
class CompiledTemplate:
    part: str  # subject | html | text | markdown | url
    template: Template
    variables: dict[str, int]  # each undeclared variable -> the template line where it is first used


class TemplateSet:
    """The campaign's compiled templates and the variables each one uses."""

    def __init__(
        self,
        compiled: dict[str, CompiledTemplate],
        places: dict[str, TemplatePlace],
        *,
        markdown: bool,
        mailto: str | None,
        unsubscribe: bool,
    ) -> None:
        self._parts = {entry.part: (label, entry.template) for label, entry in compiled.items()}
        self.variables: dict[str, set[str]] = {label: set(entry.variables) for label, entry in compiled.items()}
        self.first_lines = {label: dict(entry.variables) for label, entry in compiled.items()}
        self.places = places  # label -> where the template stands
        self.unsubscribe = unsubscribe  # the campaign has an unsubscribe section, so {{ unsubscribe_url }} has a value
        self._mailto_url = f"mailto:{mailto}?subject=unsubscribe" if mailto else ""
        self._markdown_renderer = None
        if markdown:
            from markdown_it import MarkdownIt

            self._markdown_renderer = MarkdownIt("commonmark")

    def place(self, label: str) -> TemplatePlace:
        return self.places.get(label, TemplatePlace(label))

    def _render(self, part: str, context: Mapping[str, str]) -> str | None:
        entry = self._parts.get(part)
        if entry is None:
            return None
        label, template = entry
        try:
            return template.render(context)
        except Exception as exc:  # Jinja's own errors, and a template's expression that failed ({{ 1 / 0 }})
            where = self.place(label).describe(label, _template_line(exc))
            detail = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
            raise TemplateRenderError(f"{where}: {detail}; fix the template or this row's values") from None

    def render(self, values: Mapping[str, str], email: str) -> Rendered:
        """The row's subject and parts; their {{ unsubscribe_url }} is percent-encoded (RFC 3986), so the
        links in the body, the footer and the List-Unsubscribe header are one and the same."""
        context = dict(values)
        context["email"] = email
        url = self._render("url", context)
        unsubscribe_url = url if url is not None else self._mailto_url
        context["unsubscribe_url"] = encode_uri(unsubscribe_url)
        subject = self._render("subject", context) or ""
        html = self._render("html", context)
        text = self._render("text", context)
        source = self._render("markdown", context)
        if source is not None and self._markdown_renderer is not None:
            html = self._markdown_renderer.render(source)
        if text is None:
            text = html_to_text(html) if html is not None else ""
        return Rendered(subject, html, text, unsubscribe_url)


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception raised while rendering comes from (Jinja rewrites the traceback so)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _urlencode(value: object) -> str:
    return quote(str(value), safe="")


def load_templates(campaign: Campaign) -> tuple[TemplateSet, list[Problem]]:
    """Compile subject, bodies and unsubscribe URL; every Jinja error names its file (or key) and line.

    The set holds every template that compiled, so the variables of the others are still
    checked; render only when there are no problems.
    """
    html_env, text_env, markdown_env = _environment(autoescape=True), _environment(), _environment(markdown=True)
    loader = _Loader()
    loader.compile("subject", "subject", campaign.subject, text_env, _key_place(campaign, "subject"))
    if campaign.unsubscribe and campaign.unsubscribe.url:
        url_place = _key_place(campaign, "unsubscribe.url")
        loader.compile("unsubscribe.url", "url", campaign.unsubscribe.url, text_env, url_place)
    files = campaign.template
    for part, relative, env in (
        ("html", files.html, html_env),
        ("text", files.text, text_env),
        ("markdown", files.markdown, markdown_env),
    ):
        if not relative:
            continue
        source = loader.read(campaign, relative)
        if source is not None:
            loader.compile(relative, part, source, env, TemplatePlace(relative))
    mailto = campaign.unsubscribe.mailto if campaign.unsubscribe else None
    templates = TemplateSet(
        loader.compiled,
        loader.places,
        markdown=bool(files.markdown),
        mailto=mailto,
        unsubscribe=campaign.unsubscribe is not None,
    )
    return templates, loader.problems


def _key_place(campaign: Campaign, key: str) -> TemplatePlace:
    return TemplatePlace(campaign.path.name, campaign.line_of(key), key)


class _Loader:
    """Collects the compiled templates, where each stands, and every problem found on the way."""

    def __init__(self) -> None:
        self.compiled: dict[str, CompiledTemplate] = {}
        self.places: dict[str, TemplatePlace] = {}
        self.problems: list[Problem] = []

    def read(self, campaign: Campaign, relative: str) -> str | None:
        try:
            return campaign.resolve(relative).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            self.problems.append(Problem(f"{relative} is not UTF-8; save it as UTF-8", file=relative, line=1))
        except OSError as exc:
            self.problems.append(Problem(f"cannot read {relative}: {exc.strerror}", file=relative))
        return None

    def compile(self, label: str, part: str, source: str, env: Environment, place: TemplatePlace) -> None:
        self.places[label] = place
        errors, tree = _parse(source, env)
        if tree is not None and not errors:
            try:  # compiling finds what parsing lets through, such as assigning to a special name
                template = env.from_string(source)
            except (TemplateError, SyntaxError) as exc:  # SyntaxError: Jinja made Python it cannot compile
                errors.append(_jinja_problem(exc))
            else:
                self.compiled[label] = CompiledTemplate(part, template, _first_uses(tree))
        self.problems.extend(place.problem(label, message, lineno) for message, lineno in errors)


def _parse(source: str, env: Environment) -> tuple[list[tuple[str, int | None]], nodes.Template | None]:
    """The parsed template, or None, and its problems as (message, line)."""
    try:
        tree = env.parse(source)
    except TemplateError as exc:
        return [_jinja_problem(exc)], None
    if list(meta.find_referenced_templates(tree)):
        block = next(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)))
        message = (
            "a template is one file: {% include %}, {% extends %} and {% import %} are not supported; "
            "put the content in this file"
        )
        return [(message, block.lineno)], tree
    return _unknown_filters_and_tests(tree, env), tree


def _jinja_problem(exc: TemplateError | SyntaxError) -> tuple[str, int | None]:
    if isinstance(exc, TemplateSyntaxError):
        return f"Jinja syntax error: {exc.message}; fix the template", exc.lineno or 1
    if isinstance(exc, SyntaxError):  # its line is one of the generated Python code, not of the template
        return f"Jinja cannot compile this template ({exc.msg}); fix the template", None
    return f"Jinja error: {exc}; fix the template", None


def _unknown_filters_and_tests(tree: nodes.Template, env: Environment) -> list[tuple[str, int | None]]:
    """Every filter and test the environment lacks, even in a branch no row takes (Jinja would wait)."""
    problems: list[tuple[str, int | None]] = []
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        kind, known = ("filter", env.filters) if isinstance(node, nodes.Filter) else ("test", env.tests)
        if node.name in known:
            continue
        close = difflib.get_close_matches(node.name, list(known), n=1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        message = (
            f"no Jinja {kind} is named {node.name!r}{suggestion}; "
            f"use one of Jinja's built-in {kind}s{' or urlencode' if kind == 'filter' else ''}"
        )
        problems.append((message, node.lineno))
    return problems


def _first_uses(tree: nodes.Template) -> dict[str, int]:
    """Each variable the template takes from outside -> the first line where it is used."""
    names = meta.find_undeclared_variables(tree)
    lines: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in names:
            lines[node.name] = min(lines.get(node.name, node.lineno), node.lineno)
    return {name: lines.get(name, 1) for name in names}


def check_variables(
    templates: TemplateSet, columns: list[str], *, csv_file: str, email_column: str = "email"
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings): a variable with no value is an error; a column no template uses, a warning.

    A variable has a value when the CSV has its column, or it is `email`, or it is `unsubscribe_url`
    in a campaign with an `unsubscribe` section.
    """
    available = set(columns) | {"email"}
    errors: list[Problem] = []
    used: set[str] = set()
    for label, names in templates.variables.items():
        used |= names
        place, lines = templates.place(label), templates.first_lines.get(label, {})
        for name in sorted(names - available - {"unsubscribe_url"}):
            message = (
                f"{label} uses the variable {name!r}, but {csv_file} has no such column; "
                f"add a column {name!r} to {csv_file} or remove it from {label}"
            )
            errors.append(place.problem(label, message, lines.get(name), named=True))
        if "unsubscribe_url" in names and not templates.unsubscribe:
            message = _NO_UNSUBSCRIBE.format(label=label)
            errors.append(place.problem(label, message, lines.get("unsubscribe_url"), named=True))
    warnings = [
        Problem(f"column {name!r} is not used by any template", file=csv_file, line=1)
        for name in columns
        if name and name not in used and name != email_column and name not in ALWAYS_DEFINED
    ]
    return errors, warnings


_NO_UNSUBSCRIBE = (
    "{label} uses the variable 'unsubscribe_url', but the campaign file has no unsubscribe section, so it would be "
    "empty; add one (unsubscribe: with url: or mailto:) or remove {{{{ unsubscribe_url }}}} from {label}"
)
