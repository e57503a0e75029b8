"""A TCP proxy on 127.0.0.1 that holds everything it carries for a fixed time in each direction.

In front of the test SMTP server it stands for a relay far away: with `--delay 0.025` every command reaches the
server 25 ms after the client sent it and every reply reaches the client 25 ms after the server sent it, a
50 ms round trip, like a relay in another region. Each chunk read from one side is written to the other at its
arrival time + the delay, in the order it arrived; the delay is per chunk, not per byte (no bandwidth limit).

Run: python benchmarks/relay_proxy.py --to PORT [--delay 0.025] [--port N]   prints the port it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import deque

CHUNK = 64 * 1024


class _Direction:
    """One way of one connection: chunks read from `reader` are written to `writer` `delay` seconds later."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        self.reader, self.writer, self.delay = reader, writer, delay
        self.pending: deque[bytes] = deque()  # on their way, oldest first; b"" stands for the end of the stream
        self.done = asyncio.get_running_loop().create_future()  # set once the end has been passed on

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await self.reader.read(CHUNK)
            except (ConnectionError, OSError):
                chunk = b""
            # Timers due at the same moment may run in any order; each sends the oldest chunk, so order holds.
            self.pending.append(chunk)
            loop.call_at(loop.time() + self.delay, self._send_oldest)
            if not chunk:
                break
        await self.done

    def _send_oldest(self) -> None:
        chunk = self.pending.popleft()
        if chunk:
            self.writer.write(chunk)  # buffered by the transport: a slow reader does not hold the timers up
            return
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof() and not self.writer.is_closing():
                self.writer.write_eof()
        if not self.done.done():
            self.done.set_result(None)


async def _serve_one(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, target: int, delay: float
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_writer.close()
        return
    up = _Direction(client_reader, server_writer, delay)
    down = _Direction(server_reader, client_writer, delay)
    try:
        await asyncio.gather(up.run(), down.run())
    finally:
        for writer in (client_writer, server_writer):
            writer.close()


async def serve(target: int, delay: float, port: int = 0, *, announce: bool = False) -> None:
    """Listen on 127.0.0.1:`port` (0: a free one) and forward each connection to 127.0.0.1:`target`."""
    server = await asyncio.start_server(
        lambda r, w: _serve_one(r, w, target, delay), "127.0.0.1", port, limit=CHUNK, backlog=128
    )
    if announce:
        print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", type=int, required=True, help="the port on 127.0.0.1 to forward to")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds each way (default 0.025)")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.to, args.delay, args.port, announce=True))


if __name__ == "__main__":
    main()
