"""Extra routes mounted on the service (the hook the console uses): auth, replies from later, OpenAPI, config."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

import pytest

from mlscale.errors import ConfigError, ValidationError
from mlscale.serve import Reply, ServeConfig, ServingApp, build_mount
from mlscale.serve._app import ServeMetrics
from mlscale.serve._metrics import Metrics


class EchoMount:
    """Public pages under /x/page, private JSON under /x/api, answered on the next loop turn."""

    prefix = "/x"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)

    def public(self, path: str) -> bool:
        return path.startswith("/x/page")

    def handle(self, method: str, path: str, query: str, body: bytes, reply: Reply) -> None:
        if path == "/x/api/boom":
            raise RuntimeError("a bug")
        payload = json.dumps({"method": method, "path": path, "query": query, "body": body.decode()}).encode()
        asyncio.get_running_loop().call_soon(reply, 200, payload, b"application/json", ((b"x-echo", b"1"),))

    def openapi(self) -> Mapping[str, Any]:
        return {"paths": {"/x/api": {"get": {"summary": "echo"}}}}


def make(options: Mapping[str, Any]) -> EchoMount:
    return EchoMount(options)


def _app(token: str | None = None) -> ServingApp:
    return ServingApp({}, metrics=ServeMetrics(Metrics(None, worker=str(os.getpid()))), token=token, mounts=[make({})])


def _call(app: ServingApp, method: str, path: str, body: bytes = b"", token: str | None = None) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        path_only, _, qs = path.partition("?")
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {"type": "http", "method": method, "path": path_only, "query_string": qs.encode(), "headers": headers}
        await app(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    return asyncio.run(go())


def test_a_mount_answers_its_prefix_later_with_the_request() -> None:
    status, body = _call(_app(), "POST", "/x/api/thing?a=1", b"hello")
    assert status == 200
    assert json.loads(body) == {"method": "POST", "path": "/x/api/thing", "query": "a=1", "body": "hello"}
    assert _call(_app(), "GET", "/xy")[0] == 404  # the prefix is a path segment, not a string prefix


def test_the_token_guards_all_but_the_public_paths() -> None:
    app = _app(token="s3cret")
    assert _call(app, "GET", "/x/page/index.html")[0] == 200
    assert _call(app, "GET", "/x/api/thing")[0] == 401
    assert _call(app, "GET", "/x/api/thing", token="s3cret")[0] == 200


def test_a_failing_mount_is_a_500_not_a_dropped_request() -> None:
    status, body = _call(_app(), "GET", "/x/api/boom")
    assert status == 500
    assert "internal error" in json.loads(body)["error"]["message"]


def test_the_mounts_paths_are_in_the_openapi_document() -> None:
    doc = json.loads(_call(_app(), "GET", "/openapi.json")[1])
    assert doc["paths"]["/x/api"]["get"]["summary"] == "echo"
    assert "/healthz" in doc["paths"]


def test_the_config_carries_mounts_to_the_workers(tmp_path: Any) -> None:
    config = ServeConfig(registry=str(tmp_path), models=(), mounts=((f"{__name__}:make", '{"a": 1}'),))
    again = ServeConfig.from_json(config.to_json())
    assert again.mounts == config.mounts
    mount = build_mount(*again.mounts[0])
    assert isinstance(mount, EchoMount)
    assert mount.options == {"a": 1}
    with pytest.raises(ValidationError, match="at least one model"):
        ServeConfig(registry=str(tmp_path), models=())
    with pytest.raises(ConfigError, match="module:attribute"):
        build_mount("no-colon")
