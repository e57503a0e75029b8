"""Benchmark: mailcast send against a plain smtplib loop, over an SMTP sink in its own process.

(a) a sink that answers at once: CPU time per message, mailcast vs the plain loop (target <= 3x); also
    mailcast's peak memory for 10,000 recipients (target < 100 MiB);
(b) a sink that waits 20 ms before each reply: mailcast with `connections: 16` vs the plain loop's rate
    (target >= 12x);
(c) a relay far away: the sink (advertising PIPELINING) behind benchmarks/relay_proxy.py, which holds every
    chunk 25 ms in each direction (a 50 ms round trip): mailcast with `connections: 16` sending 600 messages vs
    the plain loop through the same proxy (target >= 25x; about 33x is the limit, 2 round trips a message
    against the plain loop's 4, on 16 connections);
(d) the whole process on loopback: `mailcast send` of a fresh 5,000-row campaign as a user runs it (start-up,
    check and render included), its user + system CPU divided by 5,000, vs the plain loop's CPU per message
    sending the same messages pre-built (target <= 3x).

Every ratio is against a baseline measured in the same run; each figure is the median of interleaved rounds.

Run: python benchmarks/send.py [--quick]   (needs the test extras: aiosmtpd)
     --quick runs (c) and (d) once only, for iterating on them; the default runs everything.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

from common import MAILCAST, Measured, compile_mailcast, env_with, run_process, write_campaign

HERE = Path(__file__).resolve().parent
SINK = HERE.parent / "tests" / "smtp_server.py"
PROXY = HERE / "relay_proxy.py"
RELAY_DELAY = 0.025  # seconds each way: a 50 ms round trip


def start_sink(delay: float, *, pipelining: bool = False) -> tuple[subprocess.Popen[str], int]:
    args = [sys.executable, str(SINK), "--delay", str(delay)]
    if pipelining:
        args.append("--pipelining")
    return _start_announcing(args)


def start_proxy(target: int, delay: float) -> tuple[subprocess.Popen[str], int]:
    """benchmarks/relay_proxy.py in its own process, so its work does not count as the plain loop's CPU."""
    return _start_announcing([sys.executable, str(PROXY), "--to", str(target), "--delay", str(delay)])


def _start_announcing(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    """A server process that prints the port it listens on as its first line."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"{Path(args[1]).name} did not start (exit {proc.wait()})")
    return proc, int(line)


def stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


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


def mailcast_send(tmp: Path, port: int, count: int, connections: int, tag: str) -> Measured:
    """`mailcast send` of a fresh campaign of `count` rows, as a whole process, with a state file of its own."""
    transport = {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none", "connections": connections}
    campaign = write_campaign(tmp / f"{tag}-{count}", count, transport)
    done = run_process(
        [*MAILCAST, "send", str(campaign), "--yes"], env=env_with(MAILCAST_STATE=str(tmp / f"{tag}-{count}.db"))
    )
    if done.code != 0:
        raise SystemExit(f"mailcast send failed with exit {done.code}")
    return done


def instant_sink(tmp: Path, rounds: int) -> None:
    """(a): CPU per message against a sink that answers at once, and peak memory for 10,000 recipients."""
    big, small = 10_000, 1_000
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
            # Per message: the difference between two run sizes removes start-up and import costs.
            mc_cpu.append((full.cpu - base.cpu) / (big - small))
            mc_rate.append(big / full.wall)
            peaks.append(full.peak_mib)
    finally:
        stop(sink)
    plain_per, mc_per = median(plain_cpu), median(mc_cpu)
    print(f"(a) instant sink, {big:,} messages, median of {rounds} interleaved rounds")
    print(f"    plain smtplib loop: {median(plain_rate):8.0f} msg/s  CPU {plain_per * 1e3:6.3f} ms/msg")
    print(f"    mailcast send:      {median(mc_rate):8.0f} msg/s  CPU {mc_per * 1e3:6.3f} ms/msg"
          f"  ratio {mc_per / plain_per:4.2f}x (target <= 3x)")  # fmt: skip
    print(f"    mailcast peak memory for {big:,} recipients: {max(peaks):5.1f} MiB (target < 100 MiB)")


def delayed_sink(tmp: Path, messages: list[tuple[str, bytes]]) -> None:
    """(b): rates against a sink that waits 20 ms before each reply."""
    sink, port = start_sink(0.020)
    try:
        plain_count, mc_count = 100, 1_600
        plain_wall, _ = plain_loop(port, messages[:plain_count])
        delayed = mailcast_send(tmp, port, mc_count, 16, "b")
    finally:
        stop(sink)
    plain_rate, mc_rate = plain_count / plain_wall, mc_count / delayed.wall
    print("(b) sink waiting 20 ms before each reply")
    print(f"    plain smtplib loop:              {plain_rate:7.1f} msg/s")
    print(
        f"    mailcast send, connections: 16:  {mc_rate:7.1f} msg/s  ratio {mc_rate / plain_rate:5.1f}x (target >= 12x)"
    )


def far_relay(tmp: Path, messages: list[tuple[str, bytes]], rounds: int) -> None:
    """(c): rates through the relay proxy, 25 ms each way, in front of a sink advertising PIPELINING."""
    plain_count, mc_count = 40, 600  # the plain loop manages about 4 msg/s here: fewer messages
    sink, sink_port = start_sink(0.0, pipelining=True)
    proxy, port = start_proxy(sink_port, RELAY_DELAY)
    plain_rate, mc_rate, mc_wall = [], [], []
    try:
        for n in range(rounds):
            wall, _ = plain_loop(port, messages[:plain_count])
            plain_rate.append(plain_count / wall)
            sent = mailcast_send(tmp, port, mc_count, 16, f"c{n}")
            mc_rate.append(mc_count / sent.wall)
            mc_wall.append(sent.wall)
    finally:
        stop(proxy, sink)
    plain, mc = median(plain_rate), median(mc_rate)
    print(f"(c) relay far away: proxy holding each chunk {RELAY_DELAY * 1e3:.0f} ms each way (round trip "
          f"{2 * RELAY_DELAY * 1e3:.0f} ms), sink advertising PIPELINING, median of {rounds}")  # fmt: skip
    print(f"    plain smtplib loop, {plain_count} messages:           {plain:7.1f} msg/s")
    print(f"    mailcast send, connections: 16, {mc_count} messages: {mc:7.1f} msg/s"
          f"  ({median(mc_wall):.1f} s, whole process)  ratio {mc / plain:5.1f}x (target >= 25x)")  # fmt: skip


def whole_process(tmp: Path, messages: list[tuple[str, bytes]], rounds: int) -> None:
    """(d): the whole `mailcast send` process's CPU per message, start-up, check and render included."""
    count = len(messages)
    sink, port = start_sink(0.0, pipelining=True)
    plain_cpu, mc_cpu, mc_wall = [], [], []
    try:
        for n in range(rounds):  # interleaved, so a slow spell of the machine hits both alike
            _, cpu = plain_loop(port, messages)
            plain_cpu.append(cpu / count)
            sent = mailcast_send(tmp, port, count, 1, f"d{n}")
            mc_cpu.append(sent.cpu / count)
            mc_wall.append(sent.wall)
    finally:
        stop(sink)
    plain, mc = median(plain_cpu), median(mc_cpu)
    print(f"(d) whole process on loopback, {count:,} messages, median of {rounds}")
    print(f"    plain smtplib loop, pre-built messages:          CPU {plain * 1e3:6.3f} ms/msg")
    print(f"    mailcast send of a fresh campaign (user + sys):  CPU {mc * 1e3:6.3f} ms/msg"
          f"  ({median(mc_wall):.1f} s wall)  ratio {mc / plain:4.2f}x (target <= 3x)")  # fmt: skip


def main() -> None:
    compile_mailcast()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="run only (c) and (d), once")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        messages = prebuilt(tmp, 5_000)  # the messages of a 5,000-row campaign, as mailcast writes them
        if not args.quick:
            instant_sink(tmp, rounds)
            delayed_sink(tmp, messages)
        far_relay(tmp, messages, rounds)
        whole_process(tmp, messages, rounds)


if __name__ == "__main__":
    main()
