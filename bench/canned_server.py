"""A loopback HTTP/1.1 server in a process of its own that answers every request with canned bytes, for the
benchmarks of client CPU (``client_cpu.py``, ``transport_cpu.py``): the client's CPU is then its own, and
the server does no more than read the request and write the reply chosen for its head."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

#: the reply for a request, chosen from its head (a module-level function: it is sent to the server process)
ReplyFor = Callable[[bytes], bytes]


def _serve(port_out: Connection, reply_for: ReplyFor) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        await reader.readexactly(int(line[15:]))
                writer.write(reply_for(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=64)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


@contextmanager
def canned_server(reply_for: ReplyFor) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server process answering with ``reply_for(head)``; stopped on exit."""
    receiving, sending = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(sending, reply_for), daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{receiving.recv()}"
    finally:
        server.terminate()
        server.join()
