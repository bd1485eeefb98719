"""A fault-injecting HTTP/1.1 proxy (asyncio, in a thread) to put between the SDK and a real server.

It relays requests one by one on each connection (keep-alive included) and breaks the requests that
`plan(n)` names, n counting the requests whose request line contains `match`:

- "reset": the client's connection is reset before the request is forwarded (nothing reaches the server);
- "reset_after_commit": forwarded, answered by the server (so committed), then the client is reset;
- "cut": forwarded and answered, then only half the response reaches the client before the connection closes;
- "stall": forwarded and answered, then nothing more is sent until the client gives up and closes.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable
from typing import Literal

Fault = Literal["reset", "reset_after_commit", "cut", "stall"]


class FaultProxy:
    def __init__(
        self, upstream_port: int, plan: Callable[[int], Fault | None], match: bytes = b"/metrics HTTP/1.1"
    ) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.match = match
        self.seen = 0
        """Matching requests received so far."""
        self.faults: list[tuple[int, Fault]] = []
        """(request number, fault) of each fault injected."""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._track, "127.0.0.1", 0)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(client_in)
                if request is None:
                    return
                fault: Fault | None = None
                if self.match in request.split(b"\r\n", 1)[0]:
                    self.seen += 1
                    fault = self.plan(self.seen)
                    if fault is not None:
                        self.faults.append((self.seen, fault))
                if fault == "reset":
                    _reset(client_out)
                    return
                if upstream is None:
                    upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                upstream[1].write(request)
                await upstream[1].drain()
                response = await _read_message(upstream[0])
                if response is None:  # the server closed the connection without answering
                    return
                if fault == "reset_after_commit":
                    _reset(client_out)
                    return
                if fault == "cut":
                    client_out.write(response[: len(response) // 2])
                    await client_out.drain()
                    return
                if fault == "stall":
                    await client_in.read()  # until the client times out and closes its end
                    return
                client_out.write(response)
                await client_out.drain()
        finally:
            if upstream is not None:
                upstream[1].transport.abort()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_message(reader: asyncio.StreamReader) -> bytes | None:
    """One whole HTTP/1.1 message (head and body, by Content-Length or chunked), or None at a clean EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            body += size_line + chunk
            if size == 0:
                return head + body
    length = int(headers.get(b"content-length", b"0"))
    return head + await reader.readexactly(length)
