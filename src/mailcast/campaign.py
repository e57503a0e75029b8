"""The campaign model: a validated, typed `Campaign` and its sections, each key checked by its validator.

Reading the file (YAML, key lines, located problems) is `campaign_file.load_campaign`'s job.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mailcast.addresses import MAX_DISPLAY_NAME, address_of, check_address, check_mailbox, has_control_character

FOOTER_LANGUAGES = ("none", "en", "zh-hans", "zh-hant", "es", "fr", "de", "ja", "ko", "ar", "th", "id")
MAX_SUBJECT = 100
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
        "List-Id",
    )
)
EVERY_PATTERN = re.compile(r"^\s*(\d+)\s*([hd])\s*$")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

# the line of each key path in the campaign file, such as ("transport", "port") -> 12
KeyLines = dict[tuple[Any, ...], int]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _float_from_int(value: Any) -> Any:
    """YAML reads `20` as an int, which a strict float refuses: take it as 20.0 (a bool stays refused)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


# a number above 0 (a rate, a timeout in seconds), written as 20 or 0.5
PositiveNumber = Annotated[float, BeforeValidator(_float_from_int), Field(gt=0)]


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


class CsvOptions(_Section):
    """How the recipient list is read."""

    # None: found from the file (a .tsv file is tab-separated, any other is read with its header line's delimiter)
    delimiter: Literal[",", ";", "\t"] | None = None

    @field_validator("delimiter", mode="before")
    @classmethod
    def _tab_by_name(cls, value: Any) -> Any:
        # "tab" spells a tab; so does \t, which YAML keeps as two characters unless it is in double quotes
        if isinstance(value, str) and value.strip().lower() in ("tab", "\\t"):
            return "\t"
        if value is not None and value not in (",", ";", "\t"):
            raise ValueError(f'write the delimiter as ",", ";" or tab (got {value!r})')
        return value


class Limits(_Section):
    daily: Annotated[int, Field(gt=0)] | None = None
    warmup: Literal["standard", "off"] | list[Annotated[int, Field(gt=0)]] = "standard"
    rate: PositiveNumber | None = None
    # this many permanent rejections in a row in one run mean the server, not the addresses: the run stops
    max_rejections_in_a_row: Annotated[int, Field(ge=2)] = 20

    @field_validator("warmup", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted `off` as false.
        return "off" if value is False else value

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


HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def ehlo_name_problem(name: str) -> str | None:
    """Why `name` cannot follow EHLO (RFC 5321: a host name, or an address literal such as [192.0.2.1]
    or [IPv6:2001:db8::1]); None when it can."""
    import ipaddress

    usage = "write a host name such as mail.example.com, or an address in brackets such as [192.0.2.1]"
    if name.startswith("[") and name.endswith("]"):
        inside = name[1:-1]
        try:
            if inside[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(inside[5:])
            else:
                ipaddress.IPv4Address(inside)
        except ValueError:
            return f'"{name}" is not an address literal: {usage} (an IPv6 address as [IPv6:2001:db8::1])'
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        literal = f"[IPv6:{name}]" if ":" in name else f"[{name}]"
        return f"an address goes in brackets: {literal}"
    if len(name) > 253 or not all(HOST_LABEL.match(label) for label in name.split(".")):
        return f'"{name}" is not a host name: {usage}'
    return None


class SmtpTransport(_Section):
    type: Literal["smtp"]
    host: str
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    connections: Annotated[int, Field(ge=1, le=64)] = 1
    timeout: PositiveNumber = 30.0
    ca_file: str | None = None  # a PEM bundle trusted instead of the system's CAs (a relay with a private CA)
    helo: str | None = None  # the EHLO name; default: the machine's fully qualified name

    @field_validator("helo")
    @classmethod
    def _helo_name(cls, value: str) -> str:
        problem = ehlo_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file_needs_tls(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("security") == "none":
            raise ValueError("the CAs in ca_file verify starttls or tls, but security is none; remove ca_file")
        return value

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


def is_template(value: str) -> bool:
    """A value with Jinja in it is rendered per row; any other is used as it is."""
    return "{{" in value or "{%" in value


def _address_or_template(value: str) -> str:
    """An address (checked now) or a template of one (rendered and checked per row)."""
    if is_template(value):
        return value
    if not value.strip():
        raise ValueError("an empty address; remove it")
    return check_address(value.strip())


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# cc and bcc: one address or template, or a list of them
AddressList = Annotated[list[Annotated[str, AfterValidator(_address_or_template)]], BeforeValidator(_one_or_list)]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LIST_ID = re.compile(rf"^(?P<phrase>[^<>]*?)\s*<(?P<id>{_ATEXT}(?:\.{_ATEXT})+)>\s*$")
MAX_LIST_ID = 255


class Campaign(_Section):
    """A validated campaign file. Paths are relative to the file's folder (see `resolve`)."""

    name: str = ""
    sender: str = Field(alias="from")
    reply_to: str | list[str] = []
    subject: str
    template: TemplateFiles
    recipients: str
    email_column: str = "email"
    csv: CsvOptions = CsvOptions()
    validation: Literal["strict", "permissive"] = "strict"
    headers: dict[str, str] = {}
    tags: dict[str, str] = {}
    attachments: list[str] = []  # a path with {{ … }} is a template, rendered per row (checked by check)
    to_name: str | None = None  # a template: the display name of the To address
    cc: AddressList = []  # addresses or templates of them
    bcc: AddressList = []
    list_id: str | None = None  # default: <name.sender-domain>
    unsubscribe: Unsubscribe | None = None
    bounce_address: str | None = None  # VERP: the envelope sender becomes bounces+TAG@domain
    ad_marker: Literal["none", "before", "after"] = "none"
    schedule: Schedule | None = None
    dkim: Dkim | None = None
    limits: Limits = Limits()
    transport: Transport = MaildirTransport(type="maildir")

    _path: Path = PrivateAttr(default=Path("campaign.yaml"))
    _lines: KeyLines = PrivateAttr(default_factory=dict)

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        return check_mailbox(value)

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address(cls, value: str) -> str:
        address = check_address(value)
        if "+" in address.partition("@")[0]:
            raise ValueError(f'"{value}" already holds a "+"; give the plain address (mailcast adds +TAG to it)')
        return address

    @field_validator("reply_to")
    @classmethod
    def _reply_addresses(cls, value: str | list[str]) -> str | list[str]:
        return check_mailbox(value) if isinstance(value, str) else [check_mailbox(item) for item in value]

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

    @field_validator("to_name")
    @classmethod
    def _to_name_one_line(cls, value: str) -> str:
        if not is_template(value) and has_control_character(value):
            raise ValueError("must not contain a line break or control character")
        return value

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str) -> str:
        """`Name <label.namespace>` or `<label.namespace>` (RFC 2919), returned in that form."""
        match = None if has_control_character(value) else LIST_ID.match(value.strip())
        if match is None or len(match["id"]) > MAX_LIST_ID:
            raise ValueError(
                f'"{value}" is not a list id; write it as "Acme weekly <weekly.acme.example.net>": a name '
                f"(optional), then in angle brackets a label and a domain of yours joined by a dot "
                f"(letters, digits and hyphens, at most {MAX_LIST_ID} characters)"
            )
        phrase = match["phrase"].strip()
        if len(phrase) >= 2 and phrase[0] == phrase[-1] == '"':
            phrase = phrase[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if len(phrase) > MAX_DISPLAY_NAME:
            raise ValueError(f"the name of the list id is {len(phrase)} characters long (at most {MAX_DISPLAY_NAME})")
        return f"{phrase} <{match['id']}>" if phrase else f"<{match['id']}>"

    def placed(self, path: Path, lines: KeyLines) -> Campaign:
        """This campaign tied to its file: its path and key lines, and its name defaulting to the file's stem."""
        campaign = self.model_copy(update={"name": path.stem}) if not self.name else self
        campaign._path = path.resolve()
        campaign._lines = lines
        return campaign

    @property
    def path(self) -> Path:
        return self._path

    def line_of(self, key: str) -> int | None:
        """The line of the campaign file where a key such as "unsubscribe.url" stands."""
        return self._lines.get(tuple(int(part) if part.isdigit() else part for part in key.split(".")))

    @property
    def folder(self) -> Path:
        return self._path.parent

    def resolve(self, relative: str) -> Path:
        return (self.folder / relative).resolve()

    @property
    def sender_address(self) -> str:
        return address_of(self.sender)

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
