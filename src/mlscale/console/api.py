"""The console's routes under ``/ui``: the static page and its JSON API (:class:`ConsoleMount`).

It is a :class:`mlscale.serve.Mount`, so the serving stack carries it (``mlscale
console`` alone, or ``mlscale serve --console`` beside the models). The page
and its assets are public (a browser loads them before it has a token); every
``/ui/api/...`` route needs the server's bearer token when one is set. API
work (Parquet scans, registry reads, training) runs in a small thread pool and
the reply is handed back to the event loop, so a long request never stalls
the server. Every route is described in ``/openapi.json``; a bad parameter is
a 4xx naming the field.
"""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from mlscale.apps.threat.app import feedback_log
from mlscale.apps.threat.feedback import PATTERN_FIELDS, Verdict
from mlscale.config import load_settings
from mlscale.console import models, reports, serving
from mlscale.console.hunt import MAX_LIMIT, NotFoundError, ScoredRun, parse_filters
from mlscale.console.jobs import JobRunner
from mlscale.console.openapi import API_PATHS
from mlscale.errors import MlscaleError, ValidationError
from mlscale.registry import ModelRef, Store, open_store
from mlscale.serve import Reply

__all__ = ["ConsoleMount", "ConsoleSettings"]

PREFIX = "/ui"
_JSON = b"application/json"
_RUN_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl")


class ConsoleSettings:
    """Where the console reads from (built from the mount's options)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.registry = Path(options["registry"])
        self.runs = Path(options.get("runs") or self.registry / ".console" / "runs")
        self.reports = Path(options["reports"]) if options.get("reports") else None
        self.data_dir = Path(options.get("data_dir") or ".")
        self.state = Path(options.get("state") or self.registry / ".console")
        self.server = str(options.get("server") or "")
        self.mounted = bool(options.get("mounted"))
        self.token = load_settings().api_token  # from the environment, never in the options (a command line)


class _Request:
    __slots__ = ("body", "method", "parts", "query")

    def __init__(self, method: str, parts: list[str], query: dict[str, str], body: bytes) -> None:
        self.method = method
        self.parts = parts
        self.query = query
        self.body = body

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as err:
            raise _BadRequestError(f"malformed JSON body: {err}") from None
        if not isinstance(data, dict):
            raise _BadRequestError("expected a JSON object")
        return data


class _BadRequestError(MlscaleError):
    http_status = 400


class _NoRouteError(MlscaleError):
    http_status = 404


def _int(value: Any, name: str, lo: int, hi: int, default: int | None = None) -> int:
    if value in (None, "") and default is not None:
        return default
    try:
        out = int(value)
    except (TypeError, ValueError):
        out = lo - 1
    if isinstance(value, bool) or not lo <= out <= hi:
        raise ValidationError(f"expected a whole number in {lo}..{hi}, got {value!r}", field=name)
    return out


def _encode(data: Any) -> bytes:
    def default(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        return str(o)

    return json.dumps(data, default=default, allow_nan=False).encode()


class ConsoleMount:
    """The analyst console (see the module docs)."""

    prefix = PREFIX

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.registry)
        settings.runs.mkdir(parents=True, exist_ok=True)
        self.jobs = JobRunner(self.store, settings.data_dir, settings.runs, settings.state)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="console")
        self._runs: dict[str, tuple[float, ScoredRun]] = {}
        self._runs_lock = threading.Lock()
        self._scrapes: dict[str, tuple[float, list[serving.Sample]]] = {}
        self._detectors: dict[str, Any] = {}
        self._static = resources.files("mlscale.console") / "static"

    # -- the Mount protocol ---------------------------------------------------------------------------

    def public(self, path: str) -> bool:
        return not path.startswith(f"{PREFIX}/api/")

    def openapi(self) -> Mapping[str, Any]:
        return {"paths": API_PATHS}

    def handle(self, method: str, path: str, query: str, body: bytes, reply: Reply) -> None:
        if not path.startswith(f"{PREFIX}/api/"):
            self._static_file(method, path, reply)
            return
        try:
            q = dict(parse_qsl(query, keep_blank_values=True, max_num_fields=64)) if query else {}
        except ValueError as err:
            reply(400, _encode({"error": {"status": 400, "message": f"malformed query string: {err}"}}), _JSON, ())
            return
        parts = [unquote(p) for p in path[len(PREFIX) + 5 :].split("/") if p]
        req = _Request(method, parts, q, body)
        loop = asyncio.get_running_loop()

        def work() -> None:
            status, payload = self._answer(req)
            loop.call_soon_threadsafe(reply, status, payload, _JSON, ())

        self._pool.submit(work)

    def _static_file(self, method: str, path: str, reply: Reply) -> None:
        if method not in ("GET", "HEAD"):
            reply(405, _encode({"error": {"status": 405, "message": "use GET"}}), _JSON, ((b"allow", b"GET, HEAD"),))
            return
        if path in (PREFIX, f"{PREFIX}/"):
            name = "index.html"
        else:
            name = path[len(PREFIX) + 1 :]
            if name.startswith("static/"):
                name = name[len("static/") :]
        if "/" in name or name.startswith(".") or not name:
            reply(404, _encode({"error": {"status": 404, "message": f"no page {path!r}"}}), _JSON, ())
            return
        item = self._static / name
        if not item.is_file():
            reply(404, _encode({"error": {"status": 404, "message": f"no page {path!r}"}}), _JSON, ())
            return
        ctype = (mimetypes.guess_type(name)[0] or "application/octet-stream").encode()
        if ctype.startswith(b"text/") or ctype == b"application/javascript":
            ctype += b"; charset=utf-8"
        headers = (
            (b"cache-control", b"no-cache"),
            (
                b"content-security-policy",
                b"default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; frame-src blob:",
            ),
            (b"x-content-type-options", b"nosniff"),
        )
        reply(200, item.read_bytes(), ctype, headers)

    # -- dispatch --------------------------------------------------------------------------------------

    def _answer(self, req: _Request) -> tuple[int, bytes]:
        try:
            return 200, _encode(self._route(req))
        except MlscaleError as err:
            status = err.http_status if err.http_status < 500 else 500
            body: dict[str, Any] = {"status": status, "message": str(err)}
            field = getattr(err, "field", None)
            if field:
                body["field"] = field
            return status, _encode({"error": body})
        except Exception:  # a bug: logged by the pool, a 500 without a stack trace for the page
            import logging

            logging.getLogger("mlscale.console").exception("console API failed on %s", "/".join(req.parts))
            return 500, _encode({"error": {"status": 500, "message": "internal error (see the server log)"}})

    def _route(self, req: _Request) -> Any:
        p, m = req.parts, req.method
        routes: dict[tuple[str, ...], Callable[[_Request], Any]] = {
            ("GET", "status"): self._status,
            ("GET", "runs"): self._list_runs,
            ("POST", "runs"): lambda r: self.jobs.score(str(r.json().get("model", "")), r.json().get("data")),
            ("POST", "retrain"): self._retrain,
            ("GET", "models"): lambda r: models.overview(self.store),
            ("GET", "models", "manifest"): lambda r: models.manifest(self.store, r.query.get("ref", "")),
            ("GET", "models", "diff"): lambda r: models.diff(self.store, r.query.get("a", ""), r.query.get("b", "")),
            ("POST", "models", "promote"): self._promote,
            ("POST", "models", "rollback"): self._rollback,
            ("GET", "serving"): self._serving,
            ("GET", "reports"): lambda r: {"reports": reports.list_reports(self.settings.reports)},
            ("GET", "reports", "curve"): lambda r: reports.curve(self.settings.reports, r.query.get("id", "")),
            ("GET", "reports", "file"): self._report_file,
        }
        fn = routes.get((m, *p))
        if fn is not None:
            return fn(req)
        if len(p) >= 3 and p[0] == "runs":
            return self._run_route(req)
        if len(p) == 2 and p[0] == "jobs" and m == "GET":
            return self.jobs.status(p[1])
        raise _NoRouteError(f"no route {m} /ui/api/{'/'.join(p)}; see /openapi.json")

    def _run_route(self, req: _Request) -> Any:
        p, m = req.parts, req.method
        run = self._run(p[1])
        kind = p[2]
        if kind == "flows" and len(p) == 3 and m == "GET":
            f = parse_filters({k: v for k, v in req.query.items() if k not in ("after", "limit", "model")})
            after = _int(req.query.get("after"), "after", 0, 1 << 62, default=0)
            limit = _int(req.query.get("limit"), "limit", 1, MAX_LIMIT, default=50)
            start = time.perf_counter()
            page = run.page(f, after=after, limit=limit, verdicts=self._verdicts(req, p[1]))
            page["server_ms"] = round((time.perf_counter() - start) * 1000, 2)
            return page
        if kind == "count" and len(p) == 3 and m == "GET":
            f = parse_filters({k: v for k, v in req.query.items() if k != "model"})
            return {"count": run.count(f, self._verdicts(req, p[1]))}
        if kind == "events" and len(p) in (4, 5):
            rank = _int(p[3], "rank", 1, 1 << 62)
            if len(p) == 4 and m == "GET":
                return run.event(rank, self._verdicts(req, p[1]))
            if len(p) == 5 and p[4] == "verdict" and m == "POST":
                return self._verdict(req, p[1], run, rank)
        if kind == "ips" and len(p) == 4 and m == "GET":
            view = run.ip_view(p[3])
            view["topics"] = self._topics(self._model_of(req, p[1], required=False), view["ip"])
            return view
        if kind == "hosts" and len(p) == 3 and m == "GET":
            return self._hosts(p[1])
        raise _NoRouteError(f"no route {m} /ui/api/{'/'.join(p)}; see /openapi.json")

    # -- runs ----------------------------------------------------------------------------------------------

    def _run_files(self) -> list[Path]:
        root = self.settings.runs
        if not root.is_dir():
            return []
        return sorted(
            (p for p in root.iterdir() if p.suffix.lower() in _RUN_SUFFIXES and not p.name.startswith(".")
             and not p.name.endswith(".hosts.parquet") and not (p.suffix == ".json" and _is_sidecar(p))),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )  # fmt: skip

    def _list_runs(self, req: _Request) -> Any:
        out = []
        for path in self._run_files():
            side = _sidecar(path)
            out.append(
                {
                    "id": path.name,
                    "model": side.get("model"),
                    "data": side.get("data"),
                    "modified": path.stat().st_mtime,
                    "bytes": path.stat().st_size,
                    "hosts": path.with_name(f"{path.stem}.hosts.parquet").is_file(),
                }
            )
        return {"runs": out, "folder": str(self.settings.runs)}

    def _run(self, run_id: str) -> ScoredRun:
        path = self.settings.runs / run_id
        if "/" in run_id or run_id.startswith(".") or not path.is_file():
            known = ", ".join(p.name for p in self._run_files()[:10]) or "none yet"
            raise NotFoundError(
                f"no scored run {run_id!r} in {self.settings.runs} (runs: {known})",
                field="run",
                hint="score one with `mlscale threat score --out RUNS/NAME.parquet` or the console's Score button",
            )
        mtime = path.stat().st_mtime
        with self._runs_lock:
            cached = self._runs.get(run_id)
            if cached is None or cached[0] != mtime:
                cached = (mtime, ScoredRun(path, self.settings.state))
                self._runs[run_id] = cached
                if len(self._runs) > 16:
                    self._runs.pop(next(iter(self._runs)))
        return cached[1]

    def _model_of(self, req: _Request, run_id: str, *, required: bool = True) -> str | None:
        given = req.query.get("model") or (req.json().get("model") if req.method == "POST" else None)
        model = given or _sidecar(self.settings.runs / run_id).get("model")
        if not model:
            threat = sorted({m.name for m in self.store.list("threat")})
            if len(threat) == 1:
                model = threat[0]
        if not model and required:
            raise ValidationError("say which threat model this run's verdicts belong to", field="model")
        if not model:
            return None
        try:
            ref = ModelRef.parse(model if "/" in model else f"threat/{model}")
        except ValidationError as err:
            raise ValidationError(err.message, field="model") from None
        return ref.name

    def _verdicts(self, req: _Request, run_id: str) -> list[Verdict]:
        name = self._model_of(req, run_id, required=False)
        return feedback_log(self.store, name).read() if name else []

    def _verdict(self, req: _Request, run_id: str, run: ScoredRun, rank: int) -> Any:
        body = req.json()
        severity = _int(body.get("severity"), "severity", 1, 3)
        scope = body.get("scope", "event")
        if scope not in ("event", "pattern"):
            raise ValidationError(f"expected 'event' or 'pattern', got {scope!r}", field="scope")
        name = self._model_of(req, run_id)
        assert name is not None
        event = run.event(rank)["event"]
        note = str(body.get("note", ""))[:1000]
        if scope == "pattern":
            fields = body.get("fields") or ["dst_ip", "dst_port"]
            if not isinstance(fields, list) or not fields or any(f not in PATTERN_FIELDS for f in fields):
                raise ValidationError(f"expected a list of {', '.join(PATTERN_FIELDS)}", field="fields")
            match = {f: event[f] for f in fields if event.get(f) is not None}
            verdict = Verdict(severity, "pattern", match, note=note, model=f"threat/{name}")
        else:
            from mlscale.apps.threat.feedback import EVENT_FIELDS

            match = {k: event[k] for k in EVENT_FIELDS if event.get(k) is not None}
            if "ts" in match:
                import datetime as dt

                t = dt.datetime.fromisoformat(str(match["ts"]))
                match["ts"] = int((t - dt.datetime(1970, 1, 1, tzinfo=t.tzinfo)).total_seconds() * 1_000_000)
            if isinstance(match.get("duration"), int):
                match["duration"] = float(match["duration"])
            verdict = Verdict(severity, "event", match, note=note, model=f"threat/{name}")
        log = feedback_log(self.store, name)
        log.record([verdict])
        return {"recorded": 1, "log": str(log.path), "verdict": json.loads(verdict.to_json())}

    def _retrain(self, req: _Request) -> Any:
        body = req.json()
        run_id = body.get("run")
        before = self._run(str(run_id)).path if run_id else None
        model = self._model_of(req, str(run_id or ""), required=True)
        assert model is not None
        return self.jobs.retrain(model, before)

    def _topics(self, model: str | None, ip: str) -> list[float] | None:
        if model is None:
            return None
        try:
            manifest = self.store.resolve(f"threat/{model}")
        except MlscaleError:
            return None
        key = str(manifest.ref)
        det = self._detectors.get(key)
        if det is None:
            from mlscale.apps import get_application

            det = get_application("threat").codec.from_artifact(self.store.load(manifest.ref))
            self._detectors = {key: det}
        import pyarrow as pa

        idx = int(det.ip_index(pa.array([ip]))[0])
        if idx < 0:
            return None
        return [round(float(x), 4) for x in det.ip_topic_[idx]]

    def _hosts(self, run_id: str) -> Any:
        path = self.settings.runs / f"{Path(run_id).stem}.hosts.parquet"
        if not path.is_file():
            return {"available": False, "message": "this run has no host ranking (score with a model that ranks hosts)"}
        import pyarrow.parquet as pq

        from mlscale.console.hunt import rows_of

        table = pq.read_table(path)
        return {"available": True, "columns": table.column_names, "rows": rows_of(table.slice(0, 200))}

    # -- models, serving, reports ----------------------------------------------------------------------

    def _confirmed(self, body: Mapping[str, Any]) -> None:
        if body.get("confirm") is not True:
            raise ValidationError('moving an alias needs "confirm": true', field="confirm")

    def _promote(self, req: _Request) -> Any:
        body = req.json()
        self._confirmed(body)
        return models.promote(self.store, str(body.get("ref", "")), str(body.get("alias", "")))

    def _rollback(self, req: _Request) -> Any:
        body = req.json()
        self._confirmed(body)
        return models.rollback(self.store, str(body.get("model", "")), str(body.get("alias", "")))

    def _serving(self, req: _Request) -> Any:
        url = req.query.get("url") or self.settings.server
        if not url:
            raise ValidationError("no server to watch: pass url=http://HOST:PORT", field="url")
        if not url.startswith(("http://", "https://")):
            raise ValidationError(f"expected an http:// URL, got {url!r}", field="url")
        metrics_url = url.rstrip("/") + "/metrics"
        try:
            text = serving.fetch_metrics(metrics_url, self.settings.token)
        except OSError as err:
            return {"url": url, "up": False, "message": serving.unreachable(metrics_url, err)}
        now = time.monotonic()
        samples = serving.parse_prometheus(text)
        before = self._scrapes.get(url)
        self._scrapes[url] = (now, samples)
        figures = serving.summarize(samples, before[1] if before else None, now - before[0] if before else 0.0)
        return {"url": url, "up": True, **figures}

    def _report_file(self, req: _Request) -> Any:
        import base64

        name = req.query.get("name", "report.html")
        if name not in ("report.html", "report.json", "latency_vs_rate.png", "latency_distribution.png"):
            raise ValidationError(f"not a report file: {name!r}", field="name")
        path = reports.report_path(self.settings.reports, req.query.get("id", ""), name)
        return {"name": name, "base64": base64.b64encode(path.read_bytes()).decode()}

    def _status(self, req: _Request) -> Any:
        return {
            "registry": self.store.location,
            "models": len(self.store.list()),
            "runs": len(self._run_files()),
            "runs_folder": str(self.settings.runs),
            "reports": self.settings.reports is not None,
            "server": self.settings.server or None,
            "mounted": self.settings.mounted,
        }


def _is_sidecar(path: Path) -> bool:
    return any(path.with_suffix(s).is_file() for s in (".parquet", ".csv", ".jsonl"))


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if side == path or not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
