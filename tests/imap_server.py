"""A real IMAP server on 127.0.0.1 for tests: Dovecot from the system's packages, run in a temporary folder.

It uses its own configuration (never /etc/dovecot), runs as the current user (root included), keeps its
sockets, state, log and the user's Maildir in its folder, and listens on a free port. Messages go in by
writing files into the Maildir, so putting them in uses no IMAP code; reading flags back uses a separate
IMAP connection.

Run as a script to try it by hand: `python tests/imap_server.py` prints how to connect and waits for Ctrl-C.
"""

from __future__ import annotations

import grp
import imaplib
import mailbox
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
)  # /usr/sbin is not on every PATH
USER = "bounces"
PASSWORD = "pässwörd 1"  # non-ASCII and a space: the client must log in with AUTHENTICATE PLAIN in UTF-8

_CONFIG = """\
# mailcast's test server: nothing from /etc/dovecot
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailcast-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 0
first_valid_gid = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{capability}
mail_location = maildir:~/Maildir
{ssl}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _service_users() -> dict[str, str]:
    """Who Dovecot's own processes run as: the current user; as root, the package's unprivileged users.

    Dovecot refuses to run its login process as root; Debian's package creates `dovecot` and `dovenull`.
    """
    if os.getuid() != 0:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        return {"internal_user": user, "internal_group": group, "login_user": user}

    def existing(name: str) -> str:
        try:
            return pwd.getpwnam(name).pw_name
        except KeyError:
            return "nobody"

    internal = existing("dovecot")
    return {
        "internal_user": internal,
        "internal_group": grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name,
        "login_user": existing("dovenull"),
    }


def quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string (ASCII names only: enough for the tests)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DovecotServer:
    """`start()`, `stop()`, `deliver(bytes, folder)`, `flags(folder)`; `port`, `tls_port`, `user`, `password`."""

    def __init__(self, *, tls: bool = False, capabilities: str | None = None) -> None:
        """`tls`: also listen with TLS on `tls_port`, with a certificate from a test CA (`client_context`
        trusts it); `capabilities`: what the server announces after the login instead of its own list (to
        try clients on servers without MOVE or UIDPLUS; the commands themselves still work)."""
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
        # a short path: Dovecot's unix sockets live under it, and a socket path may not exceed 107 bytes
        self.root = Path(tempfile.mkdtemp(prefix="mailcast-imap-"))
        self.root.chmod(0o755)  # Dovecot's unprivileged processes reach their sockets under it
        self.home = self.root / "home"
        self.user = USER
        self.password = PASSWORD
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.tls = tls
        self.capabilities = capabilities
        self.client_context: ssl.SSLContext | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # who owns the mail: the current user; as root an unprivileged one, since Dovecot refuses mail as UID 0
        self.mail_owner = (os.getuid(), os.getgid())
        if os.getuid() == 0:
            owner = pwd.getpwnam(_service_users()["internal_user"])
            self.mail_owner = (owner.pw_uid, owner.pw_gid)

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def spec(self, folder: str = "INBOX", *, tls: bool = False) -> str:
        """The source as `mailcast bounces import` takes it."""
        scheme, port = ("imaps", self.tls_port) if tls else ("imap", self.port)
        return f"{scheme}://{self.user}@127.0.0.1:{port}/{folder}"

    def start(self) -> None:
        uid, gid = self.mail_owner
        self.home.mkdir()
        os.chown(self.home, uid, gid)
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}:{uid}:{gid}::{self.home}::\n")
        ssl_lines = self._make_certificate() if self.tls else "ssl = no"
        for _attempt in range(3):  # another test may take the free port first: then again with new ones
            problem = self._run(ssl_lines)
            if problem is None:
                return
            if "Address already in use" not in problem:
                break
            self.port, self.tls_port = free_port(), free_port() if self.tls else 0
        self.stop()
        raise RuntimeError(problem)

    def _run(self, ssl_lines: str) -> str | None:
        """Start Dovecot and wait for its greeting: None, or what went wrong."""
        uid, gid = self.mail_owner
        config = self.root / "dovecot.conf"
        config.write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                tls_port=self.tls_port,
                uid=uid,
                gid=gid,
                **_service_users(),
                ssl=ssl_lines,
                capability="" if self.capabilities is None else f"imap_capability = {self.capabilities}",
            )
        )
        with (self.root / "output.log").open("ab") as output:
            self.process = subprocess.Popen(
                [str(DOVECOT), "-F", "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output_text = (self.root / "output.log").read_text(errors="replace")
                return f"dovecot exited with {self.process.returncode}:\n{output_text}\n{self.log}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
                    if conn.recv(200).startswith(b"* OK"):
                        return None
            except OSError:
                time.sleep(0.05)
        return f"dovecot did not greet on 127.0.0.1:{self.port} within 20 s:\n{self.log}"

    def _make_certificate(self) -> str:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        self.client_context = ssl.create_default_context()
        ca.configure_trust(self.client_context)
        return f"ssl = yes\nssl_cert = <{self.root}/cert.pem\nssl_key = <{self.root}/key.pem"

    def stop(self) -> None:
        """SIGTERM to Dovecot's whole process group, then SIGKILL to what is left after 0.2 s.

        The master alone takes a second to stop, and up to five when it waits for its children's last words;
        the test has no use for them.
        """
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def maildir(self, folder: str = "INBOX") -> Path:
        """The folder's directory (Dovecot's Maildir++ layout: INBOX is the root, others `.Name`)."""
        base = self.home / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def deliver(self, data: bytes, folder: str = "INBOX") -> None:
        """Put a message into the folder (created if missing) as a mail delivery agent would: a file in new/."""
        mailbox.Maildir(self.maildir(), factory=None, create=True).close()  # INBOX, holding the other folders
        box = mailbox.Maildir(self.maildir(folder), factory=None, create=True)
        box.add(data)
        box.close()
        for path in [self.home, *self.home.rglob("*")]:
            os.chown(path, *self.mail_owner)

    def connect(self) -> imaplib.IMAP4:
        """A second connection, logged in, nothing selected."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.authenticate("PLAIN", lambda _: f"\0{self.user}\0{self.password}".encode())
        return imap

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Each message's flags by UID, read over a separate IMAP connection (EXAMINE: changes nothing)."""
        imap = self.connect()
        try:
            typ, data = imap.select(quoted(folder), readonly=True)
            if typ != "OK":
                raise RuntimeError(f"no folder {folder}: {data}")
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            out: dict[int, set[str]] = {}
            for line in data:
                if isinstance(line, bytes) and (
                    m := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", line)
                ):
                    uid = int(m[1] or m[4])
                    out[uid] = set((m[2] or m[3] or b"").decode().split())
            return out
        finally:
            imap.logout()


if __name__ == "__main__":
    server = DovecotServer()
    server.start()
    print(f"{server.spec()}  password: {server.password!r}  Maildir: {server.maildir()}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
