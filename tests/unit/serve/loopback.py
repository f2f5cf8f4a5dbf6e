"""A raw HTTP/1.1 client and an in-process server on a real loopback socket, for the reliability tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mlscale.serve import ServingApp
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket

Response = tuple[int, dict[str, str], bytes]


class Client:
    """Exactly the bytes we mean; pipelining included."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, timeout: float = 10.0) -> Response:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), timeout)
        return status, headers, body

    @staticmethod
    def encode(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
        hdrs = {"host": "t", **(headers or {})}
        if body is not None:
            hdrs["content-length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        return head.encode() + (body or b"")

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        await self.send(self.encode(method, path, body, headers))
        return await self.response()

    def close(self) -> None:
        self.writer.close()


def serve(app: ServingApp, test: Callable[[int, Server], Awaitable[Any]], limits: Limits | None = None) -> Any:
    """Run ``test(port, server)`` against ``app`` served on 127.0.0.1."""

    async def go() -> Any:
        loop = asyncio.get_running_loop()
        sock = bind_socket("127.0.0.1", 0, 512)
        server = Server(app, limits or Limits(), loop)
        await server.start(sock)
        try:
            return await test(sock.getsockname()[1], server)
        finally:
            server.close()
            await asyncio.sleep(0)

    return asyncio.run(go())
