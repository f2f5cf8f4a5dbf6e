"""The routes of the prediction service, whatever server carries them.

:class:`ServingApp` turns a parsed request into an answer: fixed routes
(health, readiness, metrics, OpenAPI, the model list) answer at once; model
actions are decoded straight into the predictor's typed request (``msgspec``,
no intermediate dicts), validated, and queued on the action's micro-batcher,
whose reply writes the answer. Every client mistake gets a 4xx naming what was
wrong; 500 is only for bugs. The same object is also an ASGI application.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote

import msgspec

from mlscale.errors import MlscaleError, ValidationError
from mlscale.serve._batcher import BatchStats, OverloadedError
from mlscale.serve._http import Request
from mlscale.serve._metrics import BATCH_BUCKETS, Metrics
from mlscale.serve._models import LiveModel, ModelSlot
from mlscale.serve._openapi import openapi_document
from mlscale.serve.mount import Mount

__all__ = ["ServeMetrics", "ServingApp"]

log = logging.getLogger("mlscale.serve")

_PREFIX = b"/v1/models/"
_MAX_TIMEOUT_MS = 600_000
_FIELD_AT = re.compile(r"- at `\$\.?([^`]*)`")
_FIELD_NAMED = re.compile(r"(?:unknown|required) field `([^`]*)`")
_RETRY = b"retry-after"
_VERSION_HEADER = b"x-model-version"
# Error messages may quote what the client sent; never a whole megabyte of it back.
_MAX_MESSAGE = 1000


class ServeMetrics:
    """The service's Prometheus metrics (see the module docs of ``mlscale.serve``)."""

    def __init__(self, metrics: Metrics) -> None:
        self.registry = metrics
        self.requests = metrics.counter(
            "mlscale_http_requests_total", "HTTP requests answered, by route and status code.",
            ("route", "method", "code"),
        )  # fmt: skip
        self.latency = metrics.histogram(
            "mlscale_http_request_duration_seconds",
            "Time from the first byte of a request to its answer being written, by route.",
            ("route",),
        )
        self.batch_size = metrics.histogram(
            "mlscale_batch_rows", "Rows (users, items...) per model call.", ("model", "action"), BATCH_BUCKETS
        )
        self.batch_requests = metrics.histogram(
            "mlscale_batch_requests", "Requests coalesced per model call.", ("model", "action"), BATCH_BUCKETS
        )
        self.batch_seconds = metrics.histogram(
            "mlscale_batch_duration_seconds", "Time of one model call.", ("model", "action")
        )
        self.queue_seconds = metrics.histogram(
            "mlscale_queue_seconds", "Time a request waited for its batch to start.", ("model", "action")
        )
        self.rejected = metrics.counter(
            "mlscale_rejected_total",
            "Requests refused with 503 to protect latency, by reason (queue_full, deadline).",
            ("model", "reason"),
        )
        self.version = metrics.gauge("mlscale_model_version", "The model version each worker serves.", ("model", "ref"))
        self.swaps = metrics.counter(
            "mlscale_model_swaps_total", "Hot swaps to a new model version, by outcome.", ("model", "outcome")
        )
        self.connections = metrics.gauge("mlscale_open_connections", "Open client connections.")
        self.queue_depth = metrics.gauge("mlscale_queue_rows", "Rows waiting in a model's queue.", ("model", "action"))
        self.restarts = metrics.counter(
            "mlscale_worker_restarts_total", "Worker processes that died and were replaced."
        )

    def stats(self, model: str, action: str) -> BatchStats:
        """The batcher hooks of one (model, action)."""
        return _Stats(self, model, action)


class _Stats(BatchStats):
    __slots__ = ("_labels", "_m", "_model")

    def __init__(self, m: ServeMetrics, model: str, action: str) -> None:
        self._m = m
        self._labels = (model, action)
        self._model = model

    def batch(self, requests: int, rows: int, seconds: float) -> None:
        m = self._m
        m.batch_size.observe(self._labels, rows)
        m.batch_requests.observe(self._labels, requests)
        m.batch_seconds.observe(self._labels, seconds)

    def queued(self, seconds: float) -> None:
        self._m.queue_seconds.observe(self._labels, seconds)

    def rejected(self, reason: str) -> None:
        self._m.rejected.inc((self._model, reason))


def _clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _error_body(status: int, message: str, field: str | None = None) -> bytes:
    err: dict[str, Any] = {"status": status, "message": _clip(message)}
    if field is not None:
        err["field"] = _clip(field, 200)
    return msgspec.json.encode({"error": err})


def _msgspec_field(message: str) -> str | None:
    named = _FIELD_NAMED.search(message)
    at = _FIELD_AT.search(message)
    path = at.group(1) if at else ""
    if named:
        return f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


class ServingApp:
    """Routes, authentication and validation of the service; answers through the connection.

    ``slots`` maps each served name to its :class:`ModelSlot`. ``token``:
    when set, every route but ``/healthz`` and ``/readyz`` needs
    ``Authorization: Bearer <token>``. ``timeout`` is the default deadline
    (seconds) of a model request; a client may ask for less (or more, up to 10
    minutes) with the ``X-Request-Timeout-Ms`` header. ``mounts`` add routes under their prefixes
    (:mod:`mlscale.serve.mount`).
    """

    def __init__(
        self,
        slots: Mapping[str, ModelSlot],
        *,
        metrics: ServeMetrics,
        token: str | None = None,
        timeout: float = 1.0,
        mounts: Sequence[Mount] = (),
    ) -> None:
        self.slots = dict(slots)
        self.mounts = tuple(mounts)
        self.metrics = metrics
        self.timeout = timeout
        self._auth = None if token is None else token.encode()
        self.ready = True
        self.draining = False
        self._encoder = msgspec.json.Encoder()
        # The worker's pid tells which process answered (debugging, worker-replacement checks).
        self._health = msgspec.json.encode({"status": "ok", "worker": os.getpid()})
        self._fixed = {
            b"/healthz": self._healthz,
            b"/readyz": self._readyz,
            b"/metrics": self._metrics,
            b"/openapi.json": self._openapi,
            b"/v1/models": self._list_models,
            b"/v1/models/": self._list_models,
        }
        self._openapi_doc = _with_mounts(openapi_document(self.slots, secured=token is not None), self.mounts)
        self._connections: Any = None
        for slot in self.slots.values():
            self.track_version(slot, slot.live)

    # -- plumbing ---------------------------------------------------------------------

    def track_version(self, slot: ModelSlot, live: LiveModel) -> None:
        """Show the version ``slot`` serves in the metrics."""
        self.metrics.version.set((slot.name, str(slot.ref)), live.manifest.version)

    def on_swap(self, slot: ModelSlot, live: LiveModel | None, error: BaseException | None) -> None:
        """Count a hot swap (``live`` None: the new version could not be loaded; the old one stays)."""
        if live is None:
            self.metrics.swaps.inc((slot.name, "failed"))
            return
        self.metrics.swaps.inc((slot.name, "ok"))
        self.track_version(slot, live)

    def _send(
        self,
        req: Request,
        route: str,
        status: int,
        body: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        content_type: bytes = b"application/json",
    ) -> None:
        m = self.metrics
        m.requests.inc((route, req.method.decode("latin-1"), str(status)))
        m.latency.observe((route,), time.monotonic() - req.start)
        req.conn.respond(req, status, body, headers, content_type)

    def _error(
        self,
        req: Request,
        route: str,
        status: int,
        message: str,
        field: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self._send(req, route, status, _error_body(status, message, field), headers)

    def _fail(self, req: Request, route: str, err: BaseException) -> None:
        if isinstance(err, OverloadedError):
            retry = ((_RETRY, str(err.retry_after).encode()),)
            self._error(req, route, 503, err.message, headers=retry)
        elif isinstance(err, ValidationError):
            self._error(req, route, err.http_status, err.message, err.field)
        elif isinstance(err, MlscaleError) and err.http_status < 500:
            self._error(req, route, err.http_status, str(err), getattr(err, "field", None))
        else:
            if not isinstance(err, MlscaleError):
                log.error("internal error on %s", route, exc_info=err)
            self._error(req, route, 500, "internal error (see the server log)")

    # -- dispatch ---------------------------------------------------------------------

    def handle(self, req: Request) -> None:
        """Answer one request (now, or once its micro-batch has run)."""
        path, _, query = req.url.partition(b"?")
        if path.startswith(_PREFIX) and len(path) > len(_PREFIX):
            if self._authorized(req, "/v1/models/{name}"):
                self._model_route(req, path[len(_PREFIX) :], query)
            return
        fixed = self._fixed.get(path)
        if fixed is None:
            for mount in self.mounts:
                if path == mount.prefix.encode() or path.startswith(mount.prefix.encode() + b"/"):
                    self._mounted(mount, req, path.decode("utf-8", "replace"), query)
                    return
            self._error(req, "other", 404, f"no route {path.decode('latin-1')!r}; see /openapi.json")
            return
        route = path.decode().rstrip("/") or "/"
        if req.method not in (b"GET", b"HEAD"):
            self._error(req, route, 405, "use GET", headers=((b"allow", b"GET, HEAD"),))
            return
        if route in ("/healthz", "/readyz") or self._authorized(req, route):
            fixed(req, route)

    def _authorized(self, req: Request, route: str) -> bool:
        if self._auth is None:
            return True
        given = req.authorization
        if given is not None:
            # The scheme is case-insensitive (RFC 9110 section 11.1); the token is not.
            scheme, _, credentials = given.strip().partition(b" ")
            if scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self._auth):
                return True
        self._error(
            req,
            route,
            401,
            "missing or wrong bearer token (Authorization: Bearer <MLSCALE_API_TOKEN>)",
            headers=((b"www-authenticate", b'Bearer realm="mlscale"'),),
        )
        return False

    def _mounted(self, mount: Mount, req: Request, path: str, query: bytes) -> None:
        route = mount.prefix
        if not mount.public(path) and not self._authorized(req, route):
            return

        def reply(status: int, body: bytes, content_type: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> None:
            self._send(req, route, status, body, headers, content_type)

        try:
            mount.handle(req.method.decode("latin-1"), path, query.decode("latin-1"), req.body, reply)
        except Exception as err:  # a bug of the mount: a 500, never a dropped connection
            self._fail(req, route, err)

    def _model_route(self, req: Request, rest: bytes, query: bytes) -> None:
        parts = rest.decode("utf-8", "replace").split("/", 2)
        slot = self.slots.get(parts[0])
        n = len(parts)
        route = ("/v1/models/{name}", "/v1/models/{name}/{action}", "/v1/models/{name}/{action}/{key}")[n - 1]
        if slot is None:
            known = ", ".join(sorted(self.slots)) or "none"
            self._error(req, route, 404, f"no model {parts[0]!r} is served here; served: {known}", "name")
            return
        if n == 1:
            if req.method not in (b"GET", b"HEAD"):
                self._error(req, route, 405, "use GET", headers=((b"allow", b"GET, HEAD"),))
                return
            self._send(req, route, 200, self._encoder.encode(self._model_info(slot)))
            return
        live = slot.live
        action = live.actions.get(parts[1])
        if action is None:
            known = ", ".join(live.actions)
            self._error(req, route, 404, f"model {slot.name!r} has no action {parts[1]!r}; it has: {known}", "action")
            return
        batcher = slot.batchers[parts[1]]
        try:
            deadline = req.start + self._timeout(req)
            # Fast path: at overload, refuse before any work (decoding, validating) is spent on the request.
            refusal = batcher.refuse_now(deadline, time.monotonic())
            if refusal is not None:
                self._fail(req, route, refusal)
                return
            if n == 2:
                if req.method != b"POST":
                    self._error(req, route, 405, "use POST with a JSON body", headers=((b"allow", b"POST"),))
                    return
                request = self._decode(live, parts[1], req.body)
            else:
                if req.method not in (b"GET", b"HEAD") or action.from_path is None:
                    allow = b"GET, HEAD" if action.from_path is not None else b"POST"
                    self._error(req, route, 405, "method not allowed here", headers=((b"allow", allow),))
                    return
                key = unquote(parts[2]) if "%" in parts[2] else parts[2]
                request = action.from_path(key, self._query(query) if query else {})
            cost = action.validate(request)
        except MlscaleError as err:
            self._fail(req, route, err)
            return

        def reply(result: Any) -> None:
            if isinstance(result, BaseException):
                self._fail(req, route, result)
                return
            body = self._encoder.encode(result)
            self._send(req, route, 200, body, ((_VERSION_HEADER, slot.live.version_header),))

        try:
            batcher.submit(request, cost, deadline, reply, req.start)
        except MlscaleError as err:
            self._fail(req, route, err)

    def _decode(self, live: LiveModel, action: str, body: bytes) -> Any:
        if not body:
            raise _BadRequestError("expected a JSON body")
        try:
            return live.decoders[action].decode(body)
        except msgspec.ValidationError as err:
            raise ValidationError(str(err), field=_msgspec_field(str(err))) from None
        except msgspec.DecodeError as err:
            raise _BadRequestError(f"malformed JSON: {err}") from None

    @staticmethod
    def _query(query: bytes) -> dict[str, str]:
        try:
            return dict(parse_qsl(query.decode("utf-8"), keep_blank_values=True, max_num_fields=64))
        except (ValueError, UnicodeDecodeError) as err:
            raise _BadRequestError(f"malformed query string: {err}") from None

    def _timeout(self, req: Request) -> float:
        raw = req.timeout_ms
        if raw is None:
            return self.timeout
        try:
            ms = int(raw)
        except ValueError:
            ms = 0
        if not 1 <= ms <= _MAX_TIMEOUT_MS:
            got = raw.decode("latin-1")
            raise ValidationError(
                f"expected a whole number of milliseconds in 1..{_MAX_TIMEOUT_MS}, got {got!r}",
                field="X-Request-Timeout-Ms",
            )
        return ms / 1000.0

    # -- fixed routes -------------------------------------------------------------------

    def _healthz(self, req: Request, route: str) -> None:
        self._send(req, route, 200, self._health)

    def _readyz(self, req: Request, route: str) -> None:
        if self.ready and not self.draining:
            self._send(req, route, 200, b'{"status":"ready"}')
        else:
            state = "draining" if self.draining else "loading"
            body = msgspec.json.encode({"status": state})
            self._send(req, route, 503, body, ((_RETRY, b"1"),))

    def update_gauges(self) -> None:
        """Refresh the gauges of this worker (called every second and before a scrape)."""
        m = self.metrics
        if self._connections is not None:
            m.connections.set((), len(self._connections))
        for slot in self.slots.values():
            for action, batcher in slot.batchers.items():
                m.queue_depth.set((slot.name, action), batcher.depth)

    def _metrics(self, req: Request, route: str) -> None:
        self.update_gauges()
        m = self.metrics
        self._send(req, route, 200, m.registry.render(), content_type=b"text/plain; version=0.0.4; charset=utf-8")

    def _openapi(self, req: Request, route: str) -> None:
        self._send(req, route, 200, self._openapi_doc)

    def _model_info(self, slot: ModelSlot) -> dict[str, Any]:
        live = slot.live
        man = live.manifest
        return {
            "name": slot.name,
            "ref": str(slot.ref),
            "app": man.app,
            "model": man.name,
            "version": man.version,
            "created": man.created,
            "metrics": dict(man.metrics),
            "actions": list(live.actions),
            "info": live.predictor.describe(),
        }

    def _list_models(self, req: Request, route: str) -> None:
        body = self._encoder.encode({"models": [self._model_info(s) for s in self.slots.values()]})
        self._send(req, "/v1/models", 200, body)

    # -- ASGI -----------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The same routes as an ASGI 3 application (for uvicorn, granian, hypercorn...)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        conn = _AsgiConnection()
        req = Request(conn, time.monotonic())  # type: ignore[arg-type]
        req.method = scope["method"].encode()
        qs = scope.get("query_string", b"")
        req.url = scope.get("raw_path") or scope["path"].encode()
        if qs:
            req.url += b"?" + qs
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                req.authorization = value
            elif name == b"x-request-timeout-ms":
                req.timeout_ms = value
        req.body = bytes(body)
        self.handle(req)
        status, payload, headers, content_type = await conn.done
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", b"%d" % len(payload)),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _with_mounts(doc: bytes, mounts: Sequence[Mount]) -> bytes:
    """The OpenAPI document with the mounts' paths and schemas merged in."""
    if not mounts:
        return doc
    data = msgspec.json.decode(doc)
    for mount in mounts:
        extra = mount.openapi()
        data.setdefault("paths", {}).update(extra.get("paths", {}))
        data.setdefault("components", {}).setdefault("schemas", {}).update(extra.get("schemas", {}))
    return msgspec.json.encode(data)


class _BadRequestError(MlscaleError):
    http_status = 400


class _AsgiConnection:
    """Collects the answer of one request for the ASGI adapter."""

    def __init__(self) -> None:
        self.done: asyncio.Future[tuple[int, bytes, list[tuple[bytes, bytes]], bytes]] = (
            asyncio.get_running_loop().create_future()
        )

    def respond(
        self,
        req: Request,
        status: int,
        body: bytes,
        headers: Any = (),
        content_type: bytes = b"application/json",
    ) -> None:
        if not self.done.done():
            self.done.set_result((status, body, list(headers), content_type))
