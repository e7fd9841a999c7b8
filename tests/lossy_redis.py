"""A TCP proxy in front of a Redis that can lose the answer to the next command: the command took effect, its
connection is closed before the answer leaves. As a Redis does that goes away in between (a SIGTERM: nothing
answers on the port until ``reopen``), or as a link that is reset (new connections are taken at once)."""

from __future__ import annotations

import asyncio
import contextlib

from devtools.processes import free_port


class LossyRedis:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._losing = False
        self._go_away_then = True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def reopen(self) -> None:
        """Take connections on the port (again)."""
        self._server = await asyncio.start_server(self._proxy, "127.0.0.1", self.port)

    def lose_next_answer(self, *, go_away: bool = True) -> None:
        """The next answer Redis sends is dropped and its connection closed; with ``go_away``, every connection is
        closed and the port refuses new ones."""
        self._losing, self._go_away_then = True, go_away

    async def close(self) -> None:
        self._go_away()
        if self._server is not None:
            await self._server.wait_closed()

    def _go_away(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _proxy(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {client_writer, redis_writer}

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answers: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if answers and self._losing:
                        self._losing = False
                        if self._go_away_then:
                            self._go_away()
                        client_writer.close()
                        redis_writer.close()
                        return
                    writer.write(data)
                    await writer.drain()
            writer.close()

        await asyncio.gather(pump(client_reader, redis_writer, False), pump(redis_reader, client_writer, True))
        self._writers -= {client_writer, redis_writer}
