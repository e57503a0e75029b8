"""Messages read back from a mailbox: a Maildir folder, an mbox file or an IMAP folder.

`open_source(spec)` gives a `MailSource` whose `messages()` yields every message, oldest first, as its raw
bytes; `done(message)` marks one processed (IMAP: flagged \\Seen, or moved to another folder). Nothing is
ever deleted from a Maildir or an mbox, and reading never changes an IMAP message: it is fetched with
BODY.PEEK, so it stays unseen until `done()`. An entry that is not a message (a README in cur/, a folder, a
message cut short in its header) is skipped and listed in `skipped`; a source that cannot be read at all is
a `MailcastError` that says what, where and what to do.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import itertools
import mailbox
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol
from urllib.parse import unquote

from mailcast.errors import (
    LoginRefusedError,
    MailcastError,
    ServerUnavailableError,
    SourceMissingError,
    UsageError,
)


class SourceSpecError(UsageError):
    """An imap:// or imaps:// source that cannot be understood."""


@dataclass(frozen=True)
class SourceMessage:
    ref: str  # where it is: the Maildir key, the mbox message number (from 1), the IMAP UID
    data: bytes  # the raw message


class MailSource(Protocol):
    skipped: list[str]  # warnings such as "…/cur/README.txt: not a Maildir message (skipped)"
    count: int | None  # how many messages, when known up front (for a progress bar)

    def messages(self) -> Iterator[SourceMessage]:
        """Every message, oldest first; a foreign or unreadable entry is skipped and listed in `skipped`."""
        ...

    def done(self, message: SourceMessage) -> None:
        """Mark a message processed: IMAP flags it \\Seen or moves it to `move_to`; a Maildir or mbox: nothing."""
        ...

    def close(self) -> None: ...


def is_imap(spec: str) -> bool:
    return spec[:8].lower().startswith(("imap://", "imaps://"))


def imap_user(spec: str) -> str:
    """The user of an imap:// or imaps:// source, for the password prompt."""
    return parse_imap(spec).user


def open_source(
    spec: str,
    *,
    password: str | None = None,
    move_to: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30,
) -> MailSource:
    """The mailbox `spec` names: `imap[s]://user@host[:port]/FOLDER`, else a Maildir folder or an mbox file."""
    if is_imap(spec):
        return ImapSource(parse_imap(spec), password, move_to=move_to, ssl_context=ssl_context, timeout=timeout)
    if move_to is not None:
        raise SourceSpecError(
            f"{spec}: only an IMAP folder can move messages elsewhere",
            hint="A Maildir or mbox is only read, never changed: leave out the folder to move to.",
        )
    path = Path(spec)
    try:
        if path.is_dir():
            return MaildirSource(path)
        if path.is_file():
            return MboxSource(path)
        exists = path.exists()
    except OSError as exc:  # a folder on the way that may not be looked into
        raise SourceMissingError(
            f"{path}: cannot be read: {exc.strerror or exc}", hint="Check the permissions of the path."
        ) from None
    if exists:
        raise SourceMissingError(f"{path} is neither a folder nor a file", hint=_LOCAL_HINT)
    if "://" in spec:
        raise SourceMissingError(
            f"{spec}: no such file or folder, and not an imap:// or imaps:// address",
            hint="Give imaps://USER@HOST/FOLDER, imap://USER@HOST/FOLDER, a Maildir folder or an mbox file.",
        )
    raise SourceMissingError(f"{path}: no such file or folder", hint="Check the path. " + _LOCAL_HINT)


_LOCAL_HINT = "Give a Maildir (a folder holding cur/, new/ and tmp/) or an mbox file (messages after 'From ' lines)."


# --- what counts as a message -------------------------------------------------------------------------

_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def message_problem(data: bytes) -> str | None:
    """Why `data` is not a message to read, or None: it must begin with a header field and, when its header
    is not closed by an empty line, end with a line break (else it was cut short in its header)."""
    if not data.strip():
        return "empty"
    first = data.split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first):
        return "not a message"
    if not _HEADER_END.search(data) and not data.endswith(b"\n"):
        return "cut short in its header"
    return None


# --- Maildir ------------------------------------------------------------------------------------------

# a delivery agent names each file TIME.UNIQUE.HOST (then ":2,FLAGS" once a reader has seen it); files put
# there by hand (bounce.eml) are read too, after those, in name order
_MAILDIR_KEY = re.compile(r"[0-9]+\.[^\s/:]+")


def _delivery_order(key: str) -> tuple[int, int, str]:
    return (0, int(key.split(".", 1)[0]), key) if _MAILDIR_KEY.fullmatch(key) else (1, 0, key)


class MaildirSource:
    """A Maildir's messages in new/ and cur/, oldest delivery first; tmp/ (still being written) is not read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped: list[str] = []
        missing = [f"{name}/" for name in ("cur", "new") if not (path / name).is_dir()]
        if missing:
            raise SourceMissingError(
                f"{path} is a folder but not a Maildir: it has no {' and no '.join(missing)} inside",
                hint=_LOCAL_HINT,
            )
        self._where: dict[str, Path] = {}  # key -> its file, for warnings
        try:
            for sub in ("new", "cur"):
                for entry in sorted((path / sub).iterdir()):
                    self._take_entry(entry, sub)
            self._box = mailbox.Maildir(path, factory=None, create=False)
            keys = [key for key in self._box.iterkeys() if key in self._where]
        except OSError as exc:
            raise SourceMissingError(
                f"{path}: cannot read the Maildir: {exc.strerror or exc}", hint="Check the folder's permissions."
            ) from None
        self._keys = sorted(keys, key=_delivery_order)
        self.count: int | None = len(self._keys)

    def _take_entry(self, entry: Path, sub: str) -> None:
        """Remember a message file's place, or list a foreign entry as skipped."""
        key = entry.name.split(":", 1)[0]
        if entry.is_dir():
            self.skipped.append(f"{entry}: a folder inside {sub}/, not a message (skipped)")
        elif entry.name.startswith("."):
            self.skipped.append(f"{entry}: a hidden file, not a message (skipped)")
        else:
            self._where[key] = entry

    def messages(self) -> Iterator[SourceMessage]:
        for key in self._keys:
            where = self._where.get(key, self.path / key)
            try:
                data = self._box.get_bytes(key)
            except KeyError:
                self.skipped.append(f"{where}: gone while reading (skipped)")
                continue
            except OSError as exc:
                self.skipped.append(f"{where}: cannot be read: {exc.strerror or exc} (skipped)")
                continue
            problem = message_problem(data)
            if problem:
                self.skipped.append(f"{where}: {problem} (skipped)")
                continue
            yield SourceMessage(key, data)

    def done(self, message: SourceMessage) -> None:
        """Nothing: a Maildir is only read."""

    def close(self) -> None:
        self._box.close()


# --- mbox ---------------------------------------------------------------------------------------------


class MboxSource:
    """An mbox file's messages in the file's order; the file is opened for reading only and never locked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped: list[str] = []
        try:
            with path.open("rb") as file:
                start = file.read(5)
        except OSError as exc:
            raise SourceMissingError(
                f"{path}: cannot be read: {exc.strerror or exc}", hint="Check the file's permissions."
            ) from None
        if start and start != b"From ":
            raise SourceMissingError(
                f"{path} is not an mbox file: it does not begin with a 'From ' line",
                hint="An mbox holds messages each after a line 'From SENDER DATE'; a Maildir is a folder. "
                + _LOCAL_HINT,
            )
        try:
            self._box = mailbox.mbox(path, factory=None, create=False)
            self._keys = self._box.keys()
        except OSError as exc:
            raise SourceMissingError(f"{path}: cannot be read: {exc.strerror or exc}", hint="Check the file.") from None
        self.count: int | None = len(self._keys)

    def messages(self) -> Iterator[SourceMessage]:
        for number, key in enumerate(self._keys, start=1):
            try:
                data = self._box.get_bytes(key)
            except OSError as exc:
                self.skipped.append(f"{self.path}, message {number}: cannot be read: {exc.strerror or exc} (skipped)")
                continue
            problem = message_problem(data)
            if problem:
                self.skipped.append(f"{self.path}, message {number}: {problem} (skipped)")
                continue
            yield SourceMessage(str(number), data)

    def done(self, message: SourceMessage) -> None:
        """Nothing: an mbox is only read."""

    def close(self) -> None:
        self._box.close()


# --- IMAP ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapLocation:
    tls: bool
    user: str
    host: str
    port: int
    folder: str

    @property
    def server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def where(self) -> str:
        return f"{self.server}/{self.folder}"


_IMAP_FORM = "imaps://USER@HOST[:PORT]/FOLDER (or imap:// without TLS)"


def parse_imap(spec: str) -> ImapLocation:
    """`imap[s]://user@host[:port]/FOLDER`: the user may hold '@' (or %40), the folder %-escapes; INBOX if none."""
    scheme, _, rest = spec.partition("://")
    tls = scheme.lower() == "imaps"
    authority, _, folder = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if ":" in userinfo:
        shown = f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostport}/{folder}"
        raise SourceSpecError(
            f"{shown}: the password does not belong in the address",
            hint="Give it in the environment variable named by --password-env (MAILCAST_IMAP_PASSWORD by default).",
        )
    if not at or not userinfo:
        raise SourceSpecError(f"{spec}: no user before the host", hint=f"Write {_IMAP_FORM}.")
    host, port = _host_port(spec, hostport, 993 if tls else 143)
    return ImapLocation(tls, unquote(userinfo), host, port, unquote(folder).rstrip("/") or "INBOX")


def _host_port(spec: str, hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):  # [IPv6]:port
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else tail
    else:
        host, _, port_text = hostport.partition(":")
    if not host or (port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536)):
        raise SourceSpecError(f"{spec}: no host, or a port that is not a number", hint=f"Write {_IMAP_FORM}.")
    return host, int(port_text) if port_text else default


def imap_folder_name(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    parts = []
    for printable, run in itertools.groupby(folder, key=lambda char: " " <= char <= "~"):
        text = "".join(run)
        if printable:
            parts.append(text.replace("&", "&-"))
        else:
            parts.append("&" + base64.b64encode(text.encode("utf-16-be")).decode().rstrip("=").replace("/", ",") + "-")
    return '"' + "".join(parts).replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_folder_name(name: str) -> str:
    """Modified UTF-7 back to text (folder names the server lists)."""

    def one(match: re.Match[str]) -> str:
        b64 = match[1]
        if not b64:
            return "&"
        raw = b64.replace(",", "/")
        return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-16-be", "replace")

    return re.sub(r"&([A-Za-z0-9+,]*)-", one, name)


_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)')
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_CHUNK = 25  # messages per FETCH: few round trips, little memory


class ImapSource:
    """One IMAP folder, selected read-write so that `done()` can flag or move; messages by ascending UID."""

    def __init__(
        self,
        location: ImapLocation,
        password: str | None,
        *,
        move_to: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30,
    ) -> None:
        self.location = location
        self.move_to = move_to
        self.skipped: list[str] = []
        self.count: int | None = None
        if password is None:
            raise LoginRefusedError(
                f"no password for {location.user} at the IMAP server {location.server}",
                hint="Set the environment variable named by --password-env (MAILCAST_IMAP_PASSWORD by default).",
            )
        self._imap = self._connect(ssl_context, timeout)
        self._closed = False
        try:
            self._login(password)
            self._capabilities = self._read_capabilities()
            self._select()
            data = self._expect_ok("searching the folder", "SEARCH", "UNDELETED")
            self._uids = sorted(int(uid) for line in data if line for uid in line.split())
        except BaseException:
            self.close()
            raise
        self.count = len(self._uids)

    def _connect(self, context: ssl.SSLContext | None, timeout: float) -> imaplib.IMAP4:
        where = self.location.server
        try:
            if self.location.tls:
                context = context or ssl.create_default_context()
                return imaplib.IMAP4_SSL(self.location.host, self.location.port, ssl_context=context, timeout=timeout)
            return imaplib.IMAP4(self.location.host, self.location.port, timeout=timeout)
        except ssl.SSLCertVerificationError as exc:
            raise ServerUnavailableError(
                f"the certificate of the IMAP server {where} could not be verified: {exc.verify_message}",
                hint="Check the host is the name on the server's certificate; a certificate from a private CA "
                "needs that CA's certificate to be trusted.",
            ) from None
        except ssl.SSLError as exc:
            raise ServerUnavailableError(
                f"no TLS connection to the IMAP server {where}: {exc.reason or exc}",
                hint="imaps:// speaks TLS from the start (port 993); for a server without TLS use imap://.",
            ) from None
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ServerUnavailableError(
                f"cannot reach the IMAP server {where}: {_reason(exc)}",
                hint="Check the host and port in the source (imaps:// for a server that speaks TLS from the start, "
                "usually port 993) and that the server is up, then try again.",
            ) from None

    def _login(self, password: str) -> None:
        user, server = self.location.user, self.location.server
        hint = "Check the user in the source and the password in the variable named by --password-env."
        try:
            if "AUTH=PLAIN" in self._imap.capabilities:  # UTF-8 user and password, unlike LOGIN
                secret = b"\0" + user.encode() + b"\0" + password.encode()
                self._imap.authenticate("PLAIN", lambda _challenge: secret)
            elif "LOGINDISABLED" in self._imap.capabilities:
                raise LoginRefusedError(
                    f"the IMAP server {server} takes no password over a connection without TLS",
                    hint="Use imaps:// (TLS, usually port 993).",
                )
            else:
                self._imap.login(user, password)
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise ServerUnavailableError(
                f"the IMAP server {server} closed the connection at the login: {_reason(exc)}", hint="Try again later."
            ) from None
        except imaplib.IMAP4.error as exc:
            raise LoginRefusedError(
                f"the IMAP server {server} refused the login of {user}: {_reason(exc)}", hint=hint
            ) from None
        except UnicodeEncodeError:
            raise LoginRefusedError(
                f"the IMAP server {server} offers no login for a user or password with non-ASCII characters",
                hint=hint,
            ) from None

    def _read_capabilities(self) -> set[str]:
        """What the server offers once logged in (MOVE and UIDPLUS are often only announced then)."""
        data = self._expect_ok("asking for its capabilities", "CAPABILITY")
        words = {word.upper() for line in data if isinstance(line, bytes) for word in line.decode().split()}
        return words | {word.upper() for word in self._imap.capabilities}

    def _select(self) -> None:
        where = self.location.where
        typ, data = self._command("opening the folder", "SELECT", imap_folder_name(self.location.folder))
        if typ != "OK":
            names = self._folder_names()
            raise SourceMissingError(
                f"{where}: no such folder for {self.location.user} ({_text(data)})",
                hint=f"Folders there: {', '.join(names[:30])}." if names else "Check the folder's name.",
            )

    def _folder_names(self) -> list[str]:
        try:
            _typ, data = self._command("listing the folders", "LIST", '""', "*")
        except MailcastError:
            return []
        names: list[str] = []
        for line in data:
            if isinstance(line, tuple):  # the name came as a literal
                head, raw = line[0], line[1]
            elif isinstance(line, bytes):
                head, raw = line, None
            else:
                continue
            match = _LIST_LINE.match(head)
            if not match or b"\\noselect" in match["flags"].lower():
                continue
            name = (raw or match["name"]).decode(errors="replace")
            if name.startswith('"'):
                name = re.sub(r"\\(.)", r"\1", name[1:-1])
            names.append(decode_folder_name(name))
        return sorted(names)

    def messages(self) -> Iterator[SourceMessage]:
        for start in range(0, len(self._uids), _FETCH_CHUNK):
            chunk = self._uids[start : start + _FETCH_CHUNK]
            _typ, data = self._command("reading messages", "FETCH", ",".join(map(str, chunk)), "(BODY.PEEK[])")
            bodies = _fetched_bodies(data)
            for uid in chunk:
                body = bodies.get(uid)
                if body is None:
                    self.skipped.append(f"{self.location.where} UID {uid}: no longer there (skipped)")
                    continue
                problem = message_problem(body)
                if problem:
                    self.skipped.append(f"{self.location.where} UID {uid}: {problem} (skipped)")
                    continue
                yield SourceMessage(str(uid), body)

    def done(self, message: SourceMessage) -> None:
        """Flag the message \\Seen; with `move_to`, also move it there (the folder is made if missing)."""
        uid = message.ref
        self._expect_ok(f"flagging UID {uid} as seen", "STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        if self.move_to is None:
            return
        target = imap_folder_name(self.move_to)
        if "MOVE" in self._capabilities:
            self._copy_or_move("MOVE", uid, target)
            return
        self._copy_or_move("COPY", uid, target)
        self._expect_ok(f"flagging UID {uid} deleted after copying it", "STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" in self._capabilities:  # expunge this message only; without UIDPLUS a mail client expunges it
            self._expect_ok(f"expunging UID {uid}", "EXPUNGE", uid)

    def _copy_or_move(self, command: str, uid: str, target: str) -> None:
        doing = f"{'moving' if command == 'MOVE' else 'copying'} UID {uid} to {self.move_to}"
        typ, data = self._command(doing, command, uid, target)
        if typ == "NO" and b"TRYCREATE" in b" ".join(line for line in data if isinstance(line, bytes)).upper():
            self._expect_ok(f"creating the folder {self.move_to}", "CREATE", target)
            self._command(f"subscribing to {self.move_to}", "SUBSCRIBE", target)  # so mail clients show it
            typ, data = self._command(doing, command, uid, target)
        if typ != "OK":
            self._refused(doing, data)

    def _expect_ok(self, doing: str, command: str, *args: str) -> list[Any]:
        typ, data = self._command(doing, command, *args)
        if typ != "OK":
            self._refused(doing, data)
        return data

    def _refused(self, doing: str, data: list[Any]) -> NoReturn:
        raise ServerUnavailableError(
            f"the IMAP server {self.location.where} refused {doing}: {_text(data)}",
            hint="Messages not yet marked done stay in the folder and are read again next time.",
        )

    _UID_COMMANDS = frozenset({"SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"})

    def _command(self, doing: str, command: str, *args: str) -> tuple[str, list[Any]]:
        """One IMAP command (by UID where that applies); a broken connection or a BAD reply is an error."""
        try:
            if command in self._UID_COMMANDS:
                return self._imap.uid(command, *args)
            if command == "SELECT":
                return self._imap.select(args[0])
            typ, data = getattr(self._imap, command.lower())(*args)
            return typ, data
        except imaplib.IMAP4.readonly:
            raise LoginRefusedError(
                f"{self.location.where}: the folder is read-only for {self.location.user}",
                hint="mailcast marks each message it has read: give a folder this user may change.",
            ) from None
        except (imaplib.IMAP4.abort, OSError) as exc:
            raise ServerUnavailableError(
                f"the connection to the IMAP server {self.location.where} broke while {doing}: {_reason(exc)}",
                hint="Run the command again: messages not yet marked done are read again.",
            ) from None
        except imaplib.IMAP4.error as exc:
            raise ServerUnavailableError(
                f"the IMAP server {self.location.where} refused {doing}: {_reason(exc)}",
                hint="Messages not yet marked done stay in the folder and are read again next time.",
            ) from None

    def close(self) -> None:
        """Log out; never CLOSE, which would expunge every message flagged deleted, not only ours."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._imap.logout()


def _fetched_bodies(data: list[Any]) -> dict[int, bytes]:
    """UID -> message from a UID FETCH reply; the UID item may come before or after the literal."""
    bodies: dict[int, bytes] = {}
    for index, item in enumerate(data):
        if not (isinstance(item, tuple) and len(item) == 2 and b"BODY[]" in item[0].upper()):
            continue
        match = _FETCH_UID.search(item[0])
        if match is None and index + 1 < len(data) and isinstance(data[index + 1], bytes):
            match = _FETCH_UID.search(data[index + 1])
        if match:
            bodies[int(match[1])] = item[1]
    return bodies


def _text(data: list[Any]) -> str:
    return " ".join(line.decode(errors="replace") for line in data if isinstance(line, bytes)) or "no reason given"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
