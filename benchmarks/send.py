"""Benchmark: mailcast send against a plain smtplib loop, over an SMTP sink in its own process.

(a) a sink that answers at once: CPU time per message, mailcast vs the plain loop (target <= 3x);
(b) a sink that waits 20 ms before each reply: mailcast with `connections: 16` vs the plain loop's
    rate (target >= 12x). Also mailcast's peak memory for 10,000 recipients (target < 100 MiB).

Run: python benchmarks/send.py   (needs the test extras: aiosmtpd)
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import MAILCAST, env_with, run_process, write_campaign

SINK = Path(__file__).resolve().parent.parent / "tests" / "smtp_server.py"


def start_sink(delay: float) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, str(SINK), "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def prebuilt(count: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"person{i}@example.com",
            (
                f"From: bench@example.com\r\nTo: person{i}@example.com\r\nSubject: Hello {i}\r\n"
                f"Message-ID: <{i}@example.com>\r\n\r\nHello {i}, our picks for you.\r\n"
            ).encode(),
        )
        for i in range(count)
    ]


def plain_loop(port: int, count: int) -> tuple[float, float]:
    """Pre-built messages over one smtplib connection: (wall seconds, CPU seconds)."""
    messages = prebuilt(count)
    wall, cpu = time.perf_counter(), time.process_time()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for to, data in messages:
            smtp.sendmail("bench@example.com", [to], data)
    return time.perf_counter() - wall, time.process_time() - cpu


def mailcast_send(tmp: Path, port: int, count: int, connections: int, tag: str):  # type: ignore[no-untyped-def]
    transport = {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", "connections": connections}
    campaign = write_campaign(tmp / f"{tag}-{count}", count, transport)
    return run_process(
        [*MAILCAST, "send", str(campaign), "--yes"], env=env_with(MAILCAST_STATE=str(tmp / f"{tag}-{count}.db"))
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sink, port = start_sink(0.0)
        try:
            big, small = 10_000, 1_000
            plain_wall, plain_cpu = plain_loop(port, big)
            full = mailcast_send(tmp, port, big, 1, "a")
            base = mailcast_send(tmp, port, small, 1, "a")
        finally:
            sink.terminate()
        # Per message: the difference between two run sizes removes start-up and import costs.
        mc_cpu = (full.cpu - base.cpu) / (big - small)
        plain_per = plain_cpu / big
        print(f"(a) instant sink, {big:,} messages")
        print(f"    plain smtplib loop: {big / plain_wall:8.0f} msg/s  CPU {plain_per * 1e3:6.3f} ms/msg")
        print(f"    mailcast send:      {big / full.wall:8.0f} msg/s  CPU {mc_cpu * 1e3:6.3f} ms/msg"
              f"  ratio {mc_cpu / plain_per:4.2f}x (target <= 3x)")  # fmt: skip
        print(f"    mailcast peak memory for {big:,} recipients: {full.peak_mib:5.1f} MiB (target < 100 MiB)")

        sink, port = start_sink(0.020)
        try:
            plain_count, mc_count = 100, 1_600
            plain_wall, _ = plain_loop(port, plain_count)
            delayed = mailcast_send(tmp, port, mc_count, 16, "b")
        finally:
            sink.terminate()
        plain_rate, mc_rate = plain_count / plain_wall, mc_count / delayed.wall
        print("(b) sink waiting 20 ms before each reply")
        print(f"    plain smtplib loop:              {plain_rate:7.1f} msg/s")
        print(
            f"    mailcast send, connections: 16:  {mc_rate:7.1f} msg/s  ratio {mc_rate / plain_rate:5.1f}x (target >= 12x)"
        )
        for name, measured in (("a", full), ("a-small", base), ("b", delayed)):
            if measured.code != 0:
                raise SystemExit(f"mailcast send ({name}) failed with exit {measured.code}")


if __name__ == "__main__":
    main()
