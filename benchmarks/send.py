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
from statistics import median

from common import MAILCAST, Measured, env_with, run_process, write_campaign

SINK = Path(__file__).resolve().parent.parent / "tests" / "smtp_server.py"


def start_sink(delay: float) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, str(SINK), "--delay", str(delay)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, port


def prebuilt(tmp: Path, count: int) -> list[tuple[str, bytes]]:
    """The very messages mailcast sends for this campaign, built beforehand by `mailcast preview --out`."""
    campaign = write_campaign(tmp / f"prebuilt-{count}", count)
    out = tmp / f"prebuilt-{count}-eml"
    done = run_process([*MAILCAST, "preview", str(campaign), "--out", str(out)])
    if done.code != 0:
        raise SystemExit(f"mailcast preview failed with exit {done.code}")
    messages = []
    for path in sorted(out.glob("*.eml")):
        data = path.read_bytes()
        to = next(line for line in data.split(b"\r\n") if line.startswith(b"To: "))[4:].decode()
        messages.append((to, data))
    return messages


def plain_loop(port: int, messages: list[tuple[str, bytes]]) -> tuple[float, float]:
    """Pre-built messages over one smtplib connection: (wall seconds, CPU seconds)."""
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
    rounds, big, small = 3, 10_000, 1_000
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        messages = prebuilt(tmp, big)
        sink, port = start_sink(0.0)
        plain_cpu, plain_rate, mc_cpu, mc_rate, peaks = [], [], [], [], []
        try:
            for n in range(rounds):  # interleaved, so a slow spell of the machine hits both alike
                wall, cpu = plain_loop(port, messages)
                plain_cpu.append(cpu / big)
                plain_rate.append(big / wall)
                full = mailcast_send(tmp, port, big, 1, f"a{n}")
                base = mailcast_send(tmp, port, small, 1, f"a{n}")
                check_exit(full, base)
                # Per message: the difference between two run sizes removes start-up and import costs.
                mc_cpu.append((full.cpu - base.cpu) / (big - small))
                mc_rate.append(big / full.wall)
                peaks.append(full.peak_mib)
        finally:
            sink.terminate()
        plain_per, mc_per = median(plain_cpu), median(mc_cpu)
        print(f"(a) instant sink, {big:,} messages, median of {rounds} interleaved rounds")
        print(f"    plain smtplib loop: {median(plain_rate):8.0f} msg/s  CPU {plain_per * 1e3:6.3f} ms/msg")
        print(f"    mailcast send:      {median(mc_rate):8.0f} msg/s  CPU {mc_per * 1e3:6.3f} ms/msg"
              f"  ratio {mc_per / plain_per:4.2f}x (target <= 3x)")  # fmt: skip
        print(f"    mailcast peak memory for {big:,} recipients: {max(peaks):5.1f} MiB (target < 100 MiB)")

        sink, port = start_sink(0.020)
        try:
            plain_count, mc_count = 100, 1_600
            plain_wall, _ = plain_loop(port, messages[:plain_count])
            delayed = mailcast_send(tmp, port, mc_count, 16, "b")
            check_exit(delayed)
        finally:
            sink.terminate()
        plain_rate_b, mc_rate_b = plain_count / plain_wall, mc_count / delayed.wall
        print("(b) sink waiting 20 ms before each reply")
        print(f"    plain smtplib loop:              {plain_rate_b:7.1f} msg/s")
        print(
            f"    mailcast send, connections: 16:  {mc_rate_b:7.1f} msg/s  ratio {mc_rate_b / plain_rate_b:5.1f}x (target >= 12x)"
        )


def check_exit(*measured: Measured) -> None:
    for one in measured:
        if one.code != 0:
            raise SystemExit(f"mailcast send failed with exit {one.code}")


if __name__ == "__main__":
    main()
