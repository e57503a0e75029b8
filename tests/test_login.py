"""Logging in without the password in the environment: at a terminal send and test ask for it (as
mailmerge does), under cron they stop with exit 78; check warns. Terminals are real pseudo-terminals
running the real `mailcast` process."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import MAILCAST, env_for, mailcast, mailcast_process, smtp, write_campaign
from smtp_server import TestServer

VARIABLE = "MAILCAST_TEST_LOGIN_PASSWORD"
PASSWORD = "s3cret-typed"
PROMPT = f"Password for news at 127.0.0.1 (${VARIABLE} is not set):"

# Makes the pseudo-terminal the controlling terminal of a new session (as a login does), then runs
# mailcast; getpass reads from /dev/tty, which only a controlling terminal gives.
_ON_A_TERMINAL = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """The real `mailcast` process with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ON_A_TERMINAL, *MAILCAST, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the process ended and closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk.decode("utf-8", "replace")
        return True

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{text!r} never appeared at the terminal; it shows:\n{self.output}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def finish(self, timeout: float = 60) -> int:
        """Read everything until the process ends; its exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.1) and time.monotonic() < deadline:
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0.2)[0]:
                break
        code = self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return code


def unset_env(state: Path) -> dict[str, str]:
    env = env_for(state)
    env.pop(VARIABLE, None)
    return env


def login_campaign(folder: Path, server: TestServer, count: int = 3, **transport: object) -> Path:
    return write_campaign(
        folder, count, transport=smtp(server.port, username="news", password_env=VARIABLE, **transport)
    )


def test_send_at_a_terminal_asks_for_the_password_once_and_sends(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 4, connections=3)
    state = tmp_path / "state.db"
    terminal = Terminal("send", str(campaign), env=unset_env(state))
    terminal.wait_for(PROMPT)
    assert server.connections == 0  # asked before anything connects
    terminal.type(PASSWORD + "\n")
    terminal.wait_for("[y/N]")  # the confirmation comes after the password
    terminal.type("y\n")
    assert terminal.finish() == 0, terminal.output
    assert server.recipients() == [f"r{i}@example.com" for i in range(1, 5)]
    assert server.connections == 3  # three connections, one prompt
    assert terminal.output.count("Password for") == 1
    assert PASSWORD not in terminal.output  # typed hidden
    assert mailcast("status", "--json", state=state).json()[0]["sent"] == 4


def test_send_yes_at_a_terminal_still_asks_for_the_password(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    terminal = Terminal("send", str(campaign), "--yes", env=unset_env(tmp_path / "state.db"))
    terminal.wait_for(PROMPT)
    terminal.type(PASSWORD + "\n")
    assert terminal.finish() == 0, terminal.output
    assert server.recipients() == ["r1@example.com", "r2@example.com"]


def test_a_wrong_password_typed_is_a_refused_login(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    terminal = Terminal("send", str(campaign), "--yes", env=unset_env(tmp_path / "state.db"))
    terminal.wait_for(PROMPT)
    terminal.type("wrong-typed\n")
    assert terminal.finish() == 77, terminal.output
    assert "wrong-typed" not in terminal.output
    assert server.messages == []


def test_test_command_at_a_terminal_asks_for_the_password(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    terminal = Terminal(
        "test", str(campaign), "--to", "t1@example.com", "--to", "t2@example.com", env=unset_env(tmp_path / "s.db")
    )
    terminal.wait_for(PROMPT)
    terminal.type(PASSWORD + "\n")
    assert terminal.finish() == 0, terminal.output
    assert server.recipients() == ["t1@example.com", "t2@example.com"]
    assert terminal.output.count("Password for") == 1


def test_nothing_typed_at_the_prompt_is_a_config_error(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    state = tmp_path / "state.db"
    terminal = Terminal("send", str(campaign), "--yes", env=unset_env(state))
    terminal.wait_for(PROMPT)
    terminal.type("\n")
    assert terminal.finish() == 78, terminal.output
    assert "no password was typed" in terminal.output and VARIABLE in terminal.output
    assert server.connections == 0
    assert mailcast("status", "--json", state=state).json() == []  # no run recorded


def test_ctrl_c_at_the_password_prompt_changes_nothing(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    state = tmp_path / "state.db"
    terminal = Terminal("send", str(campaign), env=unset_env(state))
    terminal.wait_for(PROMPT)
    terminal.type("\x03")  # Ctrl-C
    assert terminal.finish() == 130, terminal.output
    assert "Interrupted." in terminal.output
    assert server.connections == 0
    assert mailcast("status", "--json", state=state).json() == []


def test_the_variable_when_set_is_used_without_asking(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    env = {**env_for(tmp_path / "state.db"), VARIABLE: PASSWORD}
    terminal = Terminal("send", str(campaign), "--yes", env=env)
    assert terminal.finish() == 0, terminal.output
    assert "Password for" not in terminal.output
    assert len(server.messages) == 2


def test_without_a_terminal_the_unset_variable_stops_with_78(
    tmp_path: Path, smtp_server: Callable[..., TestServer]
) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    state = tmp_path / "state.db"
    for args in (["send", str(campaign), "--yes"], ["test", str(campaign), "--to", "t@example.com"]):
        result = mailcast_process(*args, state=state)  # stdin is /dev/null, as under cron
        assert result.code == 78, result.err
        assert VARIABLE in result.err and "Password for" not in result.err + result.out
    assert server.connections == 0


def test_check_warns_when_the_variable_is_unset(tmp_path: Path, smtp_server: Callable[..., TestServer]) -> None:
    server = smtp_server(user="news", password=PASSWORD)
    campaign = login_campaign(tmp_path / "c", server, 2)
    state = tmp_path / "state.db"
    line = campaign.read_text().splitlines().index(f"  password_env: {VARIABLE}") + 1

    unset = mailcast("check", str(campaign), state=state)
    assert unset.code == 0
    assert f"warning: news.yaml:{line}: transport.password_env: {VARIABLE} is not set" in unset.out
    assert "1 warning(s)" in unset.out
    warning = mailcast("check", "--json", str(campaign), state=state).json()["warnings"][0]
    assert warning["key"] == "transport.password_env" and warning["line"] == line

    ok = mailcast("check", str(campaign), state=state, MAILCAST_TEST_LOGIN_PASSWORD=PASSWORD)  # VARIABLE
    assert ok.code == 0 and "warning" not in ok.out


def test_check_finds_a_missing_ca_file_at_its_line(tmp_path: Path) -> None:
    campaign = write_campaign(tmp_path / "c", 1, transport=smtp(2525, security="starttls", ca_file="missing.pem"))
    line = campaign.read_text(encoding="utf-8").splitlines().index("  ca_file: missing.pem") + 1
    result = mailcast("check", str(campaign), state=tmp_path / "s.db")
    assert result.code == 78 and f"news.yaml:{line}: transport.ca_file: file missing.pem not found" in result.err
