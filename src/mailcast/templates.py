"""Jinja2 templates: compiled once per run, their variables found by parsing, rendered per row.

Rendering gives every part a message has: the HTML (from the markdown body when that is what the
campaign has) and always a text part, made from the HTML when the campaign has no text template.

CSV values are data, never templates: the HTML part is autoescaped, and in a markdown body
every value has its markdown punctuation escaped, so a value can neither open an HTML tag nor
make a link; the text part takes values as they are.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import quote, unquote

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import TemplateError

from mailcast.addresses import MAX_DISPLAY_NAME, check_address, has_control_character
from mailcast.campaign import Campaign, is_template
from mailcast.errors import ExitCode, MailcastError, Problem
from mailcast.html_text import html_to_text
from mailcast.message import encode_uri

ALWAYS_DEFINED = frozenset({"email", "unsubscribe_url"})


class TemplateRenderError(MailcastError):
    """A template could not be rendered for one row."""

    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class InlineImage:
    """A file of the campaign's folder that the HTML shows inline: its `src` became `cid:<content_id>`.
    `shared`: the template names it itself (not through a row's values), so it is encoded once per run."""

    path: Path
    content_id: str
    shared: bool


@dataclass(slots=True)  # made once per message: a frozen dataclass costs more to make
class Rendered:
    """One row's parts. `text` is always there: made from the HTML when the campaign has no text template.
    `unsubscribe_url` is the URL as rendered; the parts hold it percent-encoded, as the header will.

    Also what the row's values choose beyond the parts, each already checked: the display name of To
    (`to_name`, "" for the bare address), the Cc and Bcc addresses (empty renders dropped, none repeating
    To or each other), the files of templated attachments as (index in `attachments`, file), and the
    images the HTML shows inline."""

    subject: str
    html: str | None
    text: str
    unsubscribe_url: str
    to_name: str = ""
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    attachments: tuple[tuple[int, Path], ...] = ()
    images: tuple[InlineImage, ...] = ()


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
        fields: RowFields | None = None,
        images: InlineImages | None = None,
    ) -> None:
        self._parts = {entry.part: (label, entry.template) for label, entry in compiled.items()}
        self.variables: dict[str, set[str]] = {label: set(entry.variables) for label, entry in compiled.items()}
        self.first_lines = {label: dict(entry.variables) for label, entry in compiled.items()}
        self.places = places  # label -> where the template stands
        self.unsubscribe = unsubscribe  # the campaign has an unsubscribe section, so {{ unsubscribe_url }} has a value
        self._mailto_url = f"mailto:{mailto}?subject=unsubscribe" if mailto else ""
        self.fields = fields or RowFields()
        self.images = images
        self._markdown_renderer = None
        if markdown:
            from markdown_it import MarkdownIt

            # a single line break is a line break, as in the text the markdown was written as
            self._markdown_renderer = MarkdownIt("commonmark", {"breaks": True})

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
        html_label = "html"
        if source is not None and self._markdown_renderer is not None:
            html = self._markdown_renderer.render(source)
            html_label = "markdown"
        images: tuple[InlineImage, ...] = ()
        if html is not None and self.images is not None and self.images.in_use:
            label = self._parts[html_label][0]
            html, images = self.images.inline(html, lambda why: self._row_error(label, why))
        if text is None:
            text = html_to_text(html) if html is not None else ""
        if not self.fields.any:
            return Rendered(subject, html, text, unsubscribe_url, images=images)
        to_name = self._to_name(context)
        cc = _without(self._addresses(self.fields.cc, context), {email.lower()})
        bcc = _without(self._addresses(self.fields.bcc, context), {email.lower(), *(a.lower() for a in cc)})
        attachments = self._attachments(context)
        return Rendered(subject, html, text, unsubscribe_url, to_name, cc, bcc, attachments, images)

    def _row_error(self, label: str, why: str) -> TemplateRenderError:
        where = self.place(label).describe(label, None)
        return TemplateRenderError(f"{where}: {why}")

    def _to_name(self, context: Mapping[str, str]) -> str:
        if not self.fields.to_name:
            return ""
        name = (self._render("to_name", context) or "").strip()
        if has_control_character(name):
            raise self._row_error(
                "to_name", "the name contains a line break or control character; remove it from the values it uses"
            )
        if len(name) > MAX_DISPLAY_NAME:
            raise self._row_error(
                "to_name", f"the name is {len(name)} characters long (at most {MAX_DISPLAY_NAME}); shorten its values"
            )
        return name

    def _addresses(self, fields: tuple[tuple[str, str], ...], context: Mapping[str, str]) -> list[str]:
        """Each address as given or rendered and checked; an empty render is left out."""
        found = []
        for label, value in fields:
            if not label:  # an address as written in the campaign file, checked when it was read
                found.append(value)
                continue
            rendered = (self._render(label, context) or "").strip()
            if not rendered:
                continue
            try:
                found.append(check_address(rendered))
            except ValueError as exc:
                raise self._row_error(label, f"{exc}; fix this row's value") from None
        return found

    def _attachments(self, context: Mapping[str, str]) -> tuple[tuple[int, Path], ...]:
        """The row's file for each templated attachment: inside the campaign's folder, and there."""
        files = []
        for index, label in self.fields.attachments:
            relative = (self._render(label, context) or "").strip()
            if not relative:
                continue
            why, path = self.fields.file_in_folder(relative)
            if why:
                raise self._row_error(label, why)
            files.append((index, path))
        return tuple(files)


def _without(addresses: list[str], taken: set[str]) -> tuple[str, ...]:
    """The addresses in order, each once (compared case-insensitively), none of `taken`."""
    kept = []
    for address in addresses:
        key = address.lower()
        if key not in taken:
            taken.add(key)
            kept.append(address)
    return tuple(kept)


@dataclass(frozen=True)
class RowFields:
    """What each row chooses beyond subject and parts: To's display name, Cc, Bcc and attachments.

    `cc` and `bcc` hold (label, value): an empty label for an address as written (checked when the
    campaign file was read), else the label of its template. `attachments` holds (index, label) of
    each templated attachment."""

    folder: Path = Path()
    to_name: bool = False
    cc: tuple[tuple[str, str], ...] = ()
    bcc: tuple[tuple[str, str], ...] = ()
    attachments: tuple[tuple[int, str], ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.to_name or self.cc or self.bcc or self.attachments)

    def file_in_folder(self, relative: str) -> tuple[str, Path]:
        """(why not, the file): the file a row's path names must be inside the campaign's folder and exist."""
        if has_control_character(relative):
            return f"the path {relative!r} contains a control character; fix this row's value", Path()
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder):
            return (
                f"the path {relative} is outside the campaign's folder; a row's values may name only files inside "
                "it: fix this row's value",
                path,
            )
        if not path.is_file():
            return f"file {relative} not found (looked for {path}); add it or fix this row's value", path
        return "", path


# an <img> tag's src as written (double, single or no quotes), and HTML comments, which are passed over
_IMG_SRC = re.compile(
    r"""<!--.*?-->|(<img\b[^>]*?\ssrc\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'<>`=]+))""", re.IGNORECASE | re.DOTALL
)
# a markdown image written inline, ![alt](destination "title"): its destination
_MARKDOWN_IMAGE = re.compile(r"!\[(?:\\.|[^\]\\])*\]\(\s*(<[^>\n]*>|[^\s)]*)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _names_a_file(src: str) -> bool:
    """A src without a scheme (http:, https:, data:, cid: …), not `//host/…` nor `#…`: a file of the campaign."""
    src = src.strip()
    return bool(src) and not _SCHEME.match(src) and not src.startswith(("//", "#"))


class InlineImages:
    """The images an HTML part shows from the campaign's folder, sent inline (multipart/related).

    The template's own images are found and checked from its source when the campaign is loaded (a
    missing one is a problem at its line); per row, every `<img src>` of the rendered HTML that names a
    file gets `cid:` and the file goes along, so a src made from a row's values is checked per row."""

    def __init__(self, folder: Path, domain: str) -> None:
        self.folder = folder
        self.domain = domain
        self.in_use = False  # the template has an image that names a file, or one whose src is a template
        self.shared: set[Path] = set()  # the files the template names itself: encoded once per run
        self._by_src: dict[str, InlineImage | str] = {}  # src as it stands in the HTML -> its image, or why not

    def scan(self, source: str, *, markdown: bool) -> list[tuple[str, int]]:
        """Find the images of a template's source; return (problem, line) for each file missing or outside."""
        problems = []
        found = [
            (m.group(m.lastindex or 0), m.start(m.lastindex or 0)) for m in _IMG_SRC.finditer(source) if m.group(1)
        ]
        if markdown:
            found += [(m.group(1).strip("<>"), m.start(1)) for m in _MARKDOWN_IMAGE.finditer(source)]
        for src, offset in found:
            if is_template(src):
                self.in_use = True
                continue
            if not _names_a_file(src):
                continue
            self.in_use = True
            image = self._image(unescape(src), shared=True)
            if isinstance(image, str):
                problems.append((image, source.count("\n", 0, offset) + 1))
        return problems

    def _image(self, src: str, *, shared: bool) -> InlineImage | str:
        """The image a src names (its text, or that text percent-decoded), or why it cannot be sent.

        `shared`: the template's own src (not made from a row's values)."""
        for candidate in dict.fromkeys((src, unquote(src))):
            path = (self.folder / candidate.strip()).resolve()
            if not path.is_relative_to(self.folder):
                what_to_do = (
                    "move it inside and fix the src" if shared else "a row's values may name only files inside it"
                )
                return f"the image {src} is outside the campaign's folder; {what_to_do}"
            if path.is_file():
                if shared:
                    self.shared.add(path)
                return InlineImage(path, self.content_id(path), path in self.shared)
        what_to_do = "add the file or fix the src" if shared else "add the file or fix this row's value"
        return f"the image {src} is not found (looked for {self.folder / src}); {what_to_do}"

    def content_id(self, path: Path) -> str:
        """The Content-ID of a file: the same for the whole run, and another for each file."""
        relative = path.relative_to(self.folder).as_posix()
        return hashlib.sha256(relative.encode("utf-8")).hexdigest()[:24] + "@" + self.domain

    def inline(self, html: str, error: Callable[[str], Exception]) -> tuple[str, tuple[InlineImage, ...]]:
        """The HTML with each src naming a file turned into `cid:`, and those images (each once)."""
        used: dict[Path, InlineImage] = {}

        def to_cid(match: re.Match[str]) -> str:
            if not match.group(1):
                return match.group()
            src = match.group(2) or match.group(3) or match.group(4) or ""
            if not _names_a_file(src):
                return match.group()
            image = self._by_src.get(src)
            if image is None:
                image = self._by_src[src] = self._image(unescape(src), shared=False)
            if isinstance(image, str):
                raise error(image)
            used.setdefault(image.path, image)
            return f'{match.group(1)}"cid:{image.content_id}"'

        html = _IMG_SRC.sub(to_cid, html)
        return html, tuple(used.values())


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
    fields = _row_fields(campaign, loader, text_env)
    images = InlineImages(campaign.folder.resolve(), campaign.sender_domain)
    files = campaign.template
    for part, relative, env in (
        ("html", files.html, html_env),
        ("text", files.text, text_env),
        ("markdown", files.markdown, markdown_env),
    ):
        if not relative:
            continue
        source = loader.read(campaign, relative)
        if source is None:
            continue
        loader.compile(relative, part, source, env, TemplatePlace(relative))
        if part != "text":
            found = images.scan(source, markdown=part == "markdown")
            loader.problems.extend(Problem(message, file=relative, line=line) for message, line in found)
    mailto = campaign.unsubscribe.mailto if campaign.unsubscribe else None
    templates = TemplateSet(
        loader.compiled,
        loader.places,
        markdown=bool(files.markdown),
        mailto=mailto,
        unsubscribe=campaign.unsubscribe is not None,
        fields=fields,
        images=images,
    )
    return templates, loader.problems


def _row_fields(campaign: Campaign, loader: _Loader, env: Environment) -> RowFields:
    """Compile the templates of to_name, cc, bcc and attachments, each placed at its key (or item) line."""
    if campaign.to_name:
        loader.compile("to_name", "to_name", campaign.to_name, env, _key_place(campaign, "to_name"))
    chosen: dict[str, list[tuple[str, str]]] = {"cc": [], "bcc": []}
    attachments = []
    for key, values in (("cc", campaign.cc), ("bcc", campaign.bcc), ("attachments", campaign.attachments)):
        for index, value in enumerate(values):
            label = f"{key}.{index}" if is_template(value) else ""
            if label:
                loader.compile(label, label, value, env, _item_place(campaign, key, index))
            if key == "attachments":
                if label:
                    attachments.append((index, label))
            else:
                chosen[key].append((label, value))
    return RowFields(
        folder=campaign.folder.resolve(),
        to_name=bool(campaign.to_name),
        cc=tuple(chosen["cc"]),
        bcc=tuple(chosen["bcc"]),
        attachments=tuple(attachments),
    )


def _key_place(campaign: Campaign, key: str) -> TemplatePlace:
    return TemplatePlace(campaign.path.name, campaign.line_of(key), key)


def _item_place(campaign: Campaign, key: str, index: int) -> TemplatePlace:
    """An item of a list key (`cc.1`) at its own line; a single value (`cc: "{{ x }}"`) at the key's."""
    line = campaign.line_of(f"{key}.{index}") or campaign.line_of(key)
    return TemplatePlace(campaign.path.name, line, f"{key}.{index}")


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
                # Jinja's globals (range, dict, …) as a plain dict: each render copies them into the row's
                # context, and copying the ChainMap Jinja keeps costs more than the rest of a short render
                template.globals = dict(template.globals)
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
