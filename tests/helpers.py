"""Campaigns on disk and the real `mailcast` command, for the tests that drive whole processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAILCAST = [sys.executable, "-m", "mailcast"]


def write_campaign(
    folder: Path,
    count: int = 5,
    *,
    name: str = "news",
    transport: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    emails: list[str] | None = None,
    sender: str = "Acme News <news@example.com>",
) -> Path:
    """A working campaign with `count` recipients r1@example.com … (or the `emails` given)."""
    folder.mkdir(parents=True, exist_ok=True)
    addresses = emails or [f"r{i}@example.com" for i in range(1, count + 1)]
    lines = ["email,first_name"] + [f"{a},Name{i}" for i, a in enumerate(addresses, start=1)]
    (folder / "recipients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "body.txt").write_text("Hello {{ first_name }}\n", encoding="utf-8")
    data: dict[str, Any] = {
        "name": name,
        "from": sender,
        "subject": "Hi {{ first_name }}",
        "template": {"text": "body.txt"},
        "recipients": "recipients.csv",
        "transport": transport or {"type": "maildir", "path": "outbox"},
    }
    data.update(extra or {})
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", "timeout": 5, **extra}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def env_for(state: Path, now: str | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MAILCAST_NOW", None)
    env.update({"MAILCAST_STATE": str(state), "TZ": "UTC", "COLUMNS": "200", **extra})
    if now:
        env["MAILCAST_NOW"] = now
    return env


def mailcast(*args: str, state: Path, now: str | None = None, cwd: Path | None = None, **extra: str) -> Result:
    """Run a mailcast command as a user would, in this process (Typer's CliRunner): the same app,
    environment, exit code and output. Signals, kill -9 and terminals need a real process:
    `mailcast_process` and `start_mailcast`."""
    from typer.testing import CliRunner

    from mailcast.cli import app

    env: dict[str, str | None] = dict(env_for(state, now, **extra))
    env.setdefault("MAILCAST_NOW", None)  # unset unless given
    with _working_directory(cwd):
        result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback a user would have seen: a bug
    return Result(result.exit_code, result.stdout, result.stderr)


@contextmanager
def _working_directory(folder: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if folder is not None:
        os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def mailcast_process(*args: str, state: Path, now: str | None = None, cwd: Path | None = None, **extra: str) -> Result:
    """Run the real `mailcast` command in its own process and wait for it."""
    proc = subprocess.run(
        [*MAILCAST, *args],
        capture_output=True,
        text=True,
        env=env_for(state, now, **extra),
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start_mailcast(*args: str, state: Path, now: str | None = None, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*MAILCAST, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(state, now, **extra),
        stdin=subprocess.DEVNULL,
    )


def maildir_recipients(folder: Path) -> list[str]:
    import mailbox

    box = mailbox.Maildir(folder, create=False)
    return sorted(str(m["To"]) for m in box)


def rsa_key_pem() -> bytes:
    """A fresh RSA private key in PEM, as a DKIM key file holds it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def wait_for_messages(server: Any, count: int, timeout: float = 60) -> None:
    """Block until the test server has received `count` messages (a real process is sending)."""
    deadline = time.monotonic() + timeout
    while len(server.messages) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the test server got {len(server.messages)} of {count} messages in {timeout} s")
        time.sleep(0.01)


def signal_when(proc: subprocess.Popen[str], server: Any, count: int, signum: int) -> str:
    """Send `signum` to a running mailcast once `count` messages arrived; its stderr once it ended."""
    wait_for_messages(server, count)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return err
