"""Shared pieces of the benchmarks: a campaign of N rows on disk, and timing whole processes."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAILCAST = [sys.executable, "-m", "mailcast"]


def compile_mailcast() -> None:
    """Write mailcast's bytecode beforehand, as `pip install` does: every run is then measured as a
    user's runs are, not paying to compile the package (PYTHONDONTWRITEBYTECODE or a read-only
    checkout would otherwise have every run compile it again)."""
    import mailcast

    compileall.compile_dir(Path(mailcast.__file__).parent, quiet=1)


@dataclass
class Measured:
    wall: float
    cpu: float  # user + system
    peak_mib: float
    code: int
    user: float = 0.0  # CPU in the program itself, without the kernel's work (file system, network)


def run_process(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Measured:
    """Run a whole process; its wall time, CPU time (user + system) and peak memory (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        err = proc.stderr.read().decode()
        proc.stderr.close()
        if code not in (0, 1) and err:
            print(err, file=sys.stderr)
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, usage.ru_utime)


def best(args: list[str], repeat: int = 3, **kwargs: Any) -> Measured:
    runs = [run_process(args, **kwargs) for _ in range(repeat)]
    return min(runs, key=lambda m: m.wall)


def write_campaign(folder: Path, rows: int, transport: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "recipients.csv").open("w", encoding="utf-8") as handle:
        handle.write("email,first_name,city\n")
        for i in range(rows):
            handle.write(f"person{i}@example.com,Zoë{i},Zürich\n")
    (folder / "body.html").write_text(
        "<html><body><h1>Hello {{ first_name }}!</h1><p>Our picks for {{ city }}.</p>"
        '<p><a href="https://example.com/spring">See them</a></p></body></html>\n',
        encoding="utf-8",
    )
    (folder / "body.txt").write_text("Hello {{ first_name }}!\nOur picks for {{ city }}.\n", encoding="utf-8")
    data = {
        "name": f"bench-{rows}",
        "from": "Bench <bench@example.com>",
        "subject": "{{ first_name }}, our spring picks",
        "template": {"html": "body.html", "text": "body.txt"},
        "recipients": "recipients.csv",
        "limits": {"warmup": "off"},
        "transport": transport or {"type": "maildir", "path": "outbox"},
    }
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
