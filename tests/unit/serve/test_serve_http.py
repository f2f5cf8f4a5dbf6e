"""The HTTP server and the routes, in-process on a real socket: protocol, validation, security."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mlscale.apps import build_predictor
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket

Response = tuple[int, dict[str, str], bytes]


class Client:
    """A raw HTTP/1.1 client: exactly the bytes we mean, pipelining included."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, head: bool = False) -> Response:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        if status == 100:
            return await self.response(head)
        size = 0 if head else int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(size), 5)
        return status, headers, body

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        hdrs = {"host": "t", **(headers or {})}
        if body is not None:
            hdrs["content-length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        await self.send(head.encode() + (body or b""))
        return await self.response(head=method == "HEAD")


def _serve(app: ServingApp, test: Callable[[Client, int], Awaitable[Any]], limits: Limits | None = None) -> Any:
    async def go() -> Any:
        loop = asyncio.get_running_loop()
        sock = bind_socket("127.0.0.1", 0, 128)
        server = Server(app, limits or Limits(max_body=8192), loop)
        await server.start(sock)
        port = sock.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await test(Client(reader, writer), port)
        finally:
            writer.close()
            server.close()
            await asyncio.sleep(0)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(registry: Path) -> ServingApp:
    return create_app(registry, ["recommend/toy@production"], predictor_factory=build_predictor)


@pytest.fixture(scope="module")
def secured(registry: Path) -> ServingApp:
    return create_app(registry, ["shop=recommend/toy@1"], predictor_factory=build_predictor, token="s3cret")


def test_recommend_get_and_post(app: ServingApp) -> None:
    model = app.slots["toy"].live.predictor.model  # type: ignore[attr-defined]
    user = int(model.user_ids_[0])

    async def go(c: Client, port: int) -> None:
        status, headers, body = await c.request("GET", f"/v1/models/toy/recommend/{user}?k=3")
        assert status == 200
        assert headers["x-model-version"] == "1"
        doc = json.loads(body)
        assert doc["version"] == 1
        assert doc["results"][0]["user"] == user
        assert doc["results"][0]["items"] == [i for i, _ in model.recommend([user], 3).to_lists()[0]]
        status, _, body = await c.request("POST", "/v1/models/toy/recommend", b'{"users":[%d, 5], "k": 2}' % user)
        assert status == 200
        assert [len(r["items"]) for r in json.loads(body)["results"]] == [2, 2]

    _serve(app, go)


def test_pipelined_requests_are_answered_in_order_and_batched(app: ServingApp) -> None:
    model = app.slots["toy"].live.predictor.model  # type: ignore[attr-defined]
    users = model.user_ids_[:40].tolist()
    batcher = app.slots["toy"].batchers["recommend"]

    async def go(c: Client, port: int) -> None:
        calls = batcher.calls
        burst = b"".join(b"GET /v1/models/toy/recommend/%d?k=2 HTTP/1.1\r\nhost: t\r\n\r\n" % u for u in users)
        await c.send(burst + b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
        for u in users:
            status, _, body = await c.response()
            assert status == 200
            assert json.loads(body)["results"][0]["user"] == u
        status, _, body = await c.response()
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        assert batcher.calls - calls < len(users)  # coalesced

    _serve(app, go)


def test_every_bad_input_gets_its_4xx(app: ServingApp) -> None:
    cases: list[tuple[str, str, bytes | None, int, str | None]] = [
        ("POST", "/v1/models/toy/recommend", b'{"users": [1', 400, None),
        ("POST", "/v1/models/toy/recommend", b"", 400, None),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "k": "ten"}', 422, "k"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "k": 0}', 422, "k"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "k": 100000}', 422, "k"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "k": 5000}', 422, "k"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1.5]}', 422, "users[0]"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "exclude_seen": "yes"}', 422, "exclude_seen"),
        ("POST", "/v1/models/toy/recommend", b'{"users": [1], "colour": 1}', 422, "colour"),
        ("POST", "/v1/models/toy/recommend", b'{"users": ["x"]}', 422, "users"),
        ("POST", "/v1/models/toy/recommend", b"[1, 2]", 422, None),
        ("POST", "/v1/models/toy/recommend", b"{}", 422, "users"),
        ("GET", "/v1/models/toy/recommend/abc", None, 422, "user"),
        ("GET", "/v1/models/toy/recommend/1?k=-1", None, 422, "k"),
        ("POST", "/v1/models/nope/recommend", b"{}", 404, "name"),
        ("GET", "/v1/models/toy/explode/1", None, 404, "action"),
        ("GET", "/nowhere", None, 404, None),
        ("GET", "/v1/models/toy/recommend", None, 405, None),
        ("DELETE", "/healthz", None, 405, None),
        ("POST", "/v1/models/toy/recommend", b'{"users":[1]}', 422, "X-Request-Timeout-Ms"),
    ]

    async def go(c: Client, port: int) -> None:
        for method, path, body, want, field in cases:
            headers = {"x-request-timeout-ms": "soon"} if field == "X-Request-Timeout-Ms" else None
            status, _, raw = await c.request(method, path, body, headers)
            assert status == want, (method, path, body, raw)
            err = json.loads(raw)["error"]
            assert err["status"] == want
            assert err["message"]
            if field is not None:
                assert err["field"] == field, (path, body, err)

    _serve(app, go)


def test_body_over_the_limit_is_413_before_it_is_read(app: ServingApp) -> None:
    async def go(c: Client, port: int) -> None:
        await c.send(b"POST /v1/models/toy/recommend HTTP/1.1\r\nhost: t\r\ncontent-length: 9000000\r\n\r\n")
        status, headers, body = await c.response()
        assert status == 413
        assert headers["connection"] == "close"
        assert b"limit" in body
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        chunked = Client(reader, writer)
        await chunked.send(
            b"POST /v1/models/toy/recommend HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"".join(b"1000\r\n" + b" " * 4096 + b"\r\n" for _ in range(3))
        )
        status, _, _ = await chunked.response()
        writer.close()
        assert status == 413

    _serve(app, go)


def test_protocol_details(app: ServingApp) -> None:
    async def go(c: Client, port: int) -> None:
        status, headers, body = await c.request("HEAD", "/healthz")
        assert status == 200
        assert body == b""
        assert int(headers["content-length"]) > 0
        status, _, _ = await c.request("POST", "/v1/models/toy/recommend", b'{"users":[1]}', {"expect": "100-continue"})
        assert status == 200
        await c.send(b"GARBAGE\r\n\r\n")
        status, headers, _ = await c.response()
        assert status == 400
        assert headers["connection"] == "close"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        one = Client(reader, writer)
        await one.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        status, headers, _ = await one.response()
        assert status == 200
        assert headers["connection"] == "close"
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after a 1.0 request
        writer.close()

    _serve(app, go)


def test_fixed_routes(app: ServingApp) -> None:
    async def go(c: Client, port: int) -> None:
        status, _, body = await c.request("GET", "/readyz")
        assert status == 200
        status, _, body = await c.request("GET", "/v1/models")
        models = json.loads(body)["models"]
        assert [m["name"] for m in models] == ["toy"]
        assert models[0]["version"] == 1
        assert models[0]["actions"] == ["recommend", "similar"]
        status, _, body = await c.request("GET", "/v1/models/toy")
        assert status == 200
        assert json.loads(body)["ref"] == "recommend/toy@production"
        status, _, body = await c.request("GET", "/openapi.json")
        doc = json.loads(body)
        assert doc["openapi"].startswith("3.")
        for route in ("/healthz", "/readyz", "/metrics", "/v1/models", "/v1/models/{name}",
                      "/v1/models/{name}/recommend", "/v1/models/{name}/recommend/{user}",
                      "/v1/models/{name}/similar", "/v1/models/{name}/similar/{item}"):  # fmt: skip
            assert route in doc["paths"], route
        schema = doc["paths"]["/v1/models/{name}/recommend"]["post"]["requestBody"]["content"]
        assert "RecommendRequest" in json.dumps(schema)
        assert "RecommendRequest" in doc["components"]["schemas"]
        status, headers, body = await c.request("GET", "/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert 'mlscale_http_requests_total{route="/v1/models",method="GET",code="200"}' in text
        assert 'mlscale_model_version{model="toy",ref="recommend/toy@production",worker=' in text
        app.draining = True
        try:
            status, headers, _ = await c.request("GET", "/readyz")
            assert status == 503
            assert headers["retry-after"] == "1"
        finally:
            app.draining = False

    _serve(app, go)


def test_bearer_token(secured: ServingApp) -> None:
    async def go(c: Client, port: int) -> None:
        status, headers, _ = await c.request("GET", "/v1/models/shop/recommend/1")
        assert status == 401
        assert headers["www-authenticate"].startswith("Bearer")
        status, _, _ = await c.request("GET", "/v1/models/shop/recommend/1", headers={"authorization": "Bearer no"})
        assert status == 401
        status, _, _ = await c.request("GET", "/metrics")
        assert status == 401
        ok = {"authorization": "Bearer s3cret"}
        status, _, _ = await c.request("GET", "/v1/models/shop/recommend/1", headers=ok)
        assert status == 200
        status, _, _ = await c.request("GET", "/healthz")
        assert status == 200  # probes need no token
        status, _, body = await c.request("GET", "/openapi.json", headers=ok)
        assert json.loads(body)["security"] == [{"bearer": []}]

    _serve(secured, go)


def test_the_app_is_also_asgi(app: ServingApp) -> None:
    async def go() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": b'{"users": [1], "k": 2}', "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/models/toy/recommend", "headers": []}
        await app(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    status, body = asyncio.run(go())
    assert status == 200
    assert len(json.loads(body)["results"][0]["items"]) == 2
