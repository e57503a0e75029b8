"""The campaign file: YAML -> a validated, typed `Campaign`, every problem located by key and line."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mailcast.errors import ExitCode, MailcastError, Problem, ProblemsError
from mailcast.message import has_control_character

FOOTER_LANGUAGES = ("none", "en", "zh-hans", "zh-hant", "es", "fr", "de", "ja", "ko", "ar", "th", "id")
MAX_SUBJECT = 100
MAX_DISPLAY_NAME = 200  # keeps a From line well inside RFC 5322's 998 characters
MAX_EVERY_DAYS = 366
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "DKIM-Signature",
        "Return-Path",
        "Sender",
    )
)
EVERY_PATTERN = re.compile(r"^\s*(\d+)\s*([hd])\s*$")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
REQUIRED_KEYS = frozenset({"from", "subject", "template", "recipients", "(top level)"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _no_line_breaks(value: str) -> str:
    if has_control_character(value):
        raise ValueError("must not contain a line break or control character")
    return value


class TemplateFiles(_Section):
    html: str | None = None
    text: str | None = None
    markdown: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> TemplateFiles:
        if not (self.html or self.text or self.markdown):
            raise ValueError("give at least one of html, text or markdown")
        if self.html and self.markdown:
            raise ValueError("give html or markdown, not both (markdown is rendered to HTML)")
        return self


class Unsubscribe(_Section):
    url: str | None = None
    mailto: str | None = None
    footer: Literal[FOOTER_LANGUAGES] = "en"  # type: ignore[valid-type]

    @field_validator("mailto")
    @classmethod
    def _mailto_address(cls, value: str) -> str:
        address = value.strip()
        if address[:7].lower() == "mailto:":
            raise ValueError(
                f'write just the address, without "mailto:" (mailcast writes the link itself): '
                f"mailto: {address[7:].strip()}"
            )
        try:
            return check_address(address)
        except ValueError as exc:
            raise ValueError(f"{exc}; give the address that takes unsubscribe requests") from None

    @model_validator(mode="after")
    def _a_way_out(self) -> Unsubscribe:
        if not (self.url or self.mailto):
            raise ValueError("give url or mailto (or both), or remove the unsubscribe section")
        if self.url and not re.match(r"^https?://", self.url):
            raise ValueError("url must start with https:// or http://")
        return self


class Schedule(_Section):
    start: datetime | None = None
    every: timedelta | None = None
    cron: str | None = None
    timezone: str | None = None

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.replace(tzinfo=None) if value.tzinfo is None else value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError('write the start as "YYYY-MM-DD HH:MM" (local time)') from None
        return value

    @field_validator("every", mode="before")
    @classmethod
    def _parse_every(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = EVERY_PATTERN.match(value)
            if match and int(match.group(1)) > 0:
                hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
                if hours > MAX_EVERY_DAYS * 24:
                    raise ValueError(f"every is at most {MAX_EVERY_DAYS}d (one year)")
                return timedelta(hours=hours)
        raise ValueError('write every as a number of hours or days, such as "24h" or "7d"')

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f'"{value}" is not a cron expression such as "0 9 * * MON"')
        try:
            croniter(value, datetime(2000, 1, 1)).get_next(datetime)
        except Exception:  # croniter's own error for a time that never comes, such as 30 February
            raise ValueError(f'"{value}" never fires (no such date); check the day and month fields') from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'"{value}" is not an IANA time zone such as "Europe/Berlin"') from None
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> Schedule:
        if self.every and self.cron:
            raise ValueError("give every or cron, not both")
        if not (self.start or self.every or self.cron):
            raise ValueError("give start, every or cron, or remove the schedule section")
        return self

    @property
    def recurring(self) -> bool:
        return bool(self.every or self.cron)


class Dkim(_Section):
    domain: str
    selector: str
    private_key_file: str


class Limits(_Section):
    daily: Annotated[int, Field(gt=0)] | None = None
    warmup: Literal["standard", "off"] | list[Annotated[int, Field(gt=0)]] = "standard"
    rate: Annotated[float, Field(gt=0)] | None = None
    # this many permanent rejections in a row in one run mean the server, not the addresses: the run stops
    max_rejections_in_a_row: Annotated[int, Field(ge=2)] = 20

    @field_validator("warmup", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `off` as false.
        return "off" if value is False else value

    @field_validator("rate", mode="before")
    @classmethod
    def _int_rate(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("warmup")
    @classmethod
    def _plan_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("a warm-up plan needs at least one daily limit")
        return value


def is_loopback(host: str) -> bool:
    """localhost or a loopback address: the one place a login may go without TLS."""
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpTransport(_Section):
    type: Literal["smtp"]
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    connections: Annotated[int, Field(ge=1, le=64)] = 1
    timeout: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("timeout", mode="before")
    @classmethod
    def _int_timeout(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpTransport:
        if bool(self.username) != bool(self.password_env):
            raise ValueError("username and password_env go together: give both or neither")
        if self.username and self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                f"security is none, so the password for {self.username} would cross the network to {self.host} "
                "unencrypted; mailcast never does that: use security: starttls (port 587) or tls (port 465)"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class MaildirTransport(_Section):
    type: Literal["maildir"]
    path: str = "outbox"


Transport = Annotated[SmtpTransport | MaildirTransport, Field(discriminator="type")]


class Campaign(_Section):
    """A validated campaign file. Paths are relative to the file's folder (see `resolve`)."""

    name: str = ""
    sender: str = Field(alias="from")
    reply_to: str | list[str] = []
    subject: str
    template: TemplateFiles
    recipients: str
    email_column: str = "email"
    validation: Literal["strict", "permissive"] = "strict"
    headers: dict[str, str] = {}
    tags: dict[str, str] = {}
    attachments: list[str] = []
    unsubscribe: Unsubscribe | None = None
    ad_marker: Literal["none", "before", "after"] = "none"
    schedule: Schedule | None = None
    dkim: Dkim | None = None
    limits: Limits = Limits()
    transport: Transport = MaildirTransport(type="maildir")

    _path: Path = PrivateAttr(default=Path("campaign.yaml"))
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        return _mailbox(value)

    @field_validator("reply_to")
    @classmethod
    def _reply_addresses(cls, value: str | list[str]) -> str | list[str]:
        return _mailbox(value) if isinstance(value, str) else [_mailbox(item) for item in value]

    @field_validator("subject")
    @classmethod
    def _subject_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the subject must not be empty")
        if "{" not in value and len(value) > MAX_SUBJECT:
            raise ValueError(f"the subject is {len(value)} characters long (at most {MAX_SUBJECT}); shorten it")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = []
        for name, text in value.items():
            if not HEADER_NAME.match(name):
                wrong.append(f'"{name}" is not a valid header name')
            elif name.lower() in RESERVED_HEADERS:
                wrong.append(f"{name} is set by mailcast; remove it from headers")
            elif has_control_character(text):
                wrong.append(f"the value of {name} must not contain a line break or control character")
        if wrong:
            raise ValueError("; ".join(wrong))
        return value

    @field_validator("tags")
    @classmethod
    def _tag_chars(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            for part in (name, text):
                if not TAG_PATTERN.match(part):
                    raise ValueError(f'"{part}" may hold only ASCII letters, digits, _ and -')
        return value

    @property
    def path(self) -> Path:
        return self._path

    def line_of(self, key: str) -> int | None:
        """The line of the campaign file where a key such as "unsubscribe.url" stands."""
        return self._lines.get(tuple(key.split(".")))

    @property
    def folder(self) -> Path:
        return self._path.parent

    def resolve(self, relative: str) -> Path:
        return (self.folder / relative).resolve()

    @property
    def sender_address(self) -> str:
        return _address_of(self.sender)

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2].lower()

    @property
    def reply_to_list(self) -> list[str]:
        return [self.reply_to] if isinstance(self.reply_to, str) else list(self.reply_to)

    @property
    def kind(self) -> Literal["batch", "scheduled", "recurring"]:
        if self.schedule is None:
            return "batch"
        return "recurring" if self.schedule.recurring else "scheduled"


def _address_of(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1] or value


def _mailbox(value: str) -> str:
    """One mailbox, `Name <address>` or a bare address, with the address checked; returned with
    the address in its ASCII form."""
    from email.utils import formataddr, getaddresses

    _no_line_breaks(value)
    found = getaddresses([value])
    if len(found) != 1 or not found[0][1]:
        raise ValueError(
            f'"{value}" is not one mailbox; write it as "Name <address@example.com>" or just the address '
            '(a name with a comma goes in double quotes: "\\"Acme, Inc\\" <news@example.com>")'
        )
    display, address = found[0]
    if len(display) > MAX_DISPLAY_NAME:
        raise ValueError(f"the name in {value[:40]!r}… is {len(display)} characters long (at most {MAX_DISPLAY_NAME})")
    return formataddr((display, check_address(address)))


def check_address(address: str) -> str:
    """Validate an address's syntax (no DNS); return it normalised, with an international domain
    in its ASCII (IDNA) form; raise ValueError with why."""
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        why = str(exc).rstrip(".")
        if "before the @-sign" in why:
            why += " (such addresses need SMTPUTF8, which mailcast does not send)"
        raise ValueError(f'"{address}" is not a valid address: {why}') from None
    return str(checked.ascii_email or checked.normalized)


def load_campaign(path: Path) -> Campaign:
    """Read and validate a campaign file; raise ProblemsError (exit 78) listing every problem."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _config_error([Problem(f"campaign file {shown} does not exist", file=shown)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _config_error([Problem(f"cannot read the campaign file: {exc}", file=shown)]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise _config_error([Problem(f"YAML error: {problem}", file=shown, line=line)]) from None
    lines, repeats = _key_lines(node)
    if not isinstance(data, dict):
        raise _config_error(
            [Problem("the campaign file must be a mapping of keys (name, from, subject, …)", file=shown, line=1)]
        )

    problems = [_repeat_problem(key, line, first, shown) for key, line, first in repeats]
    transport = data.get("transport")
    if isinstance(transport, dict) and "password" in transport:
        problems.append(
            Problem(
                "transport.password: a password must never be written in the campaign file; "
                "put it in an environment variable and name that variable with password_env",
                file=shown,
                line=lines.get(("transport", "password")),
                key="transport.password",
            )
        )
        transport = {k: v for k, v in transport.items() if k != "password"}
        data = {**data, "transport": transport}
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        errors = _problems_from(exc, shown, lines)
        problems.extend(errors)
        # Validate again without the faulty optional keys, so that `check` can still look at
        # the recipients and templates and report their problems in the same run.
        faulty = {str(p.key).split(".")[0] for p in errors}
        partial = None
        if not faulty & REQUIRED_KEYS:
            try:
                partial = _placed(
                    Campaign.model_validate({k: v for k, v in data.items() if k not in faulty}), path, lines
                )
            except ValidationError:
                partial = None
        raise _config_error(problems, partial, shown, lines) from None
    campaign = _placed(campaign, path, lines)
    if problems:
        raise _config_error(problems, campaign, shown, lines)
    problems.extend(_file_problems(campaign, shown, lines))
    if problems:
        raise _config_error(problems)
    return campaign


def _placed(campaign: Campaign, path: Path, lines: dict[tuple[Any, ...], int]) -> Campaign:
    """The campaign with its file's path and key lines, and its name defaulting to the file's stem."""
    if not campaign.name:
        campaign = campaign.model_copy(update={"name": path.stem})
    campaign._path = path.resolve()
    campaign._lines = lines
    return campaign


def _file_problems(campaign: Campaign, shown: str, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    """Files the campaign names must exist and stay inside its folder (attachments)."""
    problems: list[Problem] = []
    named: list[tuple[tuple[Any, ...], str]] = [(("recipients",), campaign.recipients)]
    for part in ("html", "text", "markdown"):
        value = getattr(campaign.template, part)
        if value:
            named.append((("template", part), value))
    for index, item in enumerate(campaign.attachments):
        named.append((("attachments", index), item))
    if campaign.dkim:
        named.append((("dkim", "private_key_file"), campaign.dkim.private_key_file))
    folder = campaign.folder.resolve()
    for key, relative in named:
        target = campaign.resolve(relative)
        dotted = ".".join(str(k) for k in key)
        line = lines.get(key)
        if key[0] == "attachments" and not target.is_relative_to(folder):
            problems.append(
                Problem(
                    f"{dotted}: {relative} is outside the campaign's folder; move it inside",
                    file=shown,
                    line=line,
                    key=dotted,
                )
            )
        elif not target.is_file():
            problems.append(
                Problem(f"{dotted}: file {relative} not found (looked for {target})", file=shown, line=line, key=dotted)
            )
        elif key == ("dkim", "private_key_file"):
            problems.extend(_dkim_key_problems(campaign, target, shown, line))
    return problems


def _dkim_key_problems(campaign: Campaign, key_file: Path, shown: str, line: int | None) -> list[Problem]:
    """The DKIM key must sign: tried once here, so check finds a bad key before send does."""
    from mailcast.message import DkimSigner

    assert campaign.dkim is not None
    try:
        DkimSigner(
            domain=campaign.dkim.domain,
            selector=campaign.dkim.selector,
            private_key=key_file.read_bytes(),
            key_file=campaign.dkim.private_key_file,
        )
    except MailcastError as exc:
        return [Problem(exc.message, file=shown, line=line, key="dkim.private_key_file")]
    except OSError as exc:
        return [Problem(f"dkim.private_key_file: cannot read it: {exc.strerror}", file=shown, line=line)]
    return []


def _config_error(
    problems: list[Problem],
    partial: Campaign | None = None,
    shown: str = "",
    lines: dict[tuple[Any, ...], int] | None = None,
) -> ProblemsError:
    """Exit 78 with every problem; `partial` is the campaign without its faulty keys, when its files exist."""
    if partial is not None:
        missing = _file_problems(partial, shown, lines or {})
        problems = problems + missing
        partial = None if missing else partial
    return ProblemsError(problems=problems, kind=ExitCode.CONFIG, partial=partial)


def _key_lines(node: yaml.Node | None) -> tuple[dict[tuple[Any, ...], int], list[tuple[str, int, int]]]:
    """Map each key path, such as ("transport", "port"), to the 1-based line where it stands; and
    list each key written twice in one mapping as (dotted key, its line, the line of the first)."""
    lines: dict[tuple[Any, ...], int] = {}
    repeats: list[tuple[str, int, int]] = []
    looked_at: set[int] = set()  # an aliased mapping is walked again but its repeats are reported once

    def walk(current: yaml.Node, prefix: tuple[Any, ...]) -> None:
        if isinstance(current, yaml.MappingNode):
            if id(current) not in looked_at:
                looked_at.add(id(current))
                repeats.extend(_repeated_keys(current, prefix))
            for key_node, value_node in current.value:
                path = (*prefix, key_node.value)
                lines[path] = key_node.start_mark.line + 1
                walk(value_node, path)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                path = (*prefix, index)
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    if node is not None:
        walk(node, ())
    return lines, repeats


def _repeated_keys(mapping: yaml.MappingNode, prefix: tuple[Any, ...]) -> list[tuple[str, int, int]]:
    """Keys written twice in one mapping, as (dotted key, its line, the line of the first)."""
    first_lines: dict[tuple[str, str], int] = {}
    repeats = []
    for key_node, _ in mapping.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue  # a complex key (a list or mapping as key) is refused later as an unknown key
        line = key_node.start_mark.line + 1
        key = (key_node.tag, key_node.value)  # `1` and `"1"` are different keys
        if key in first_lines:
            repeats.append((".".join(str(p) for p in (*prefix, key_node.value)), line, first_lines[key]))
        else:
            first_lines[key] = line
    return repeats


def _repeat_problem(key: str, line: int, first: int, shown: str) -> Problem:
    where = f"on line {first} and again on line {line}" if first != line else f"on line {line}"
    return Problem(
        f"{key} is written twice {where}; YAML would quietly keep only the last one, so delete the one you do not mean",
        file=shown,
        line=line,
        key=key,
    )


def _problems_from(exc: ValidationError, shown: str, lines: dict[tuple[Any, ...], int]) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in ("smtp", "maildir"))
        # pydantic puts the failing type's name into union locations: drop those parts
        loc = tuple(
            p
            for p in loc
            if not (
                isinstance(p, str)
                and (
                    "[" in p
                    or p in ("str", "list", "int", "float", "function-after", "constrained-int", "constrained-float")
                )
            )
        )
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        for cut in range(len(loc), 0, -1):
            line = lines.get(loc[:cut])
            if line:
                break
        message = _explain(error, dotted)
        problems.append(Problem(message, file=shown, line=line, key=dotted))
    # A union reports one error per alternative; keep one message per key.
    seen: dict[str, Problem] = {}
    for p in problems:
        seen.setdefault(f"{p.key}|{p.message}", p)
    return list(seen.values())


def _explain(error: Any, dotted: str) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {dotted}: remove it or check its spelling (see the README's campaign file reference)"
    if kind == "missing":
        return f"{dotted} is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{dotted} must be a section of keys, such as {{html: body.html}} (got {error.get('input')!r})"
    if kind.endswith("_type") or kind in ("literal_error", "union_tag_invalid", "union_tag_not_found"):
        got = error.get("input")
        return f"{dotted}: {message} (got {got!r})"
    return f"{dotted}: {message}"
