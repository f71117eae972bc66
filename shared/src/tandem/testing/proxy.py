"""A TCP proxy a test can cut: the way to take a shared server away from one client only.

Point the client under test at ``127.0.0.1:<proxy.port>``; :meth:`TcpProxy.stop` closes the
listener and every connection at once (the server looks gone), :meth:`TcpProxy.start` brings
it back on the same port. The server itself, shared with other tests, is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards a local port to a server; ``stop`` cuts every connection at once."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


__all__ = ["TcpProxy"]
