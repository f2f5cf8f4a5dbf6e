"""The console's JSON API as OpenAPI paths (merged into the server's ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

__all__ = ["API_PATHS"]

_ERR = {"$ref": "#/components/schemas/Error"}
_FILTERS = [
    ("since", "start of the time window (ISO-8601, UTC)"),
    ("until", "end of the time window (ISO-8601, UTC, excluded)"),
    ("ip", "an IP address or a CIDR (either side of the flow)"),
    ("port", "a port (either side)"),
    ("proto", "a transport protocol (tcp, udp, icmp...)"),
    ("max_score", "only rows with a score at most this (lower is more suspicious)"),
    ("verdict", "none (unrated), any, 1, 2 or 3"),
    ("model", "the threat model whose verdicts apply (default: the run's, or the only one)"),
]


def _q(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": {"type": "string"}}


def _p(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _op(summary: str, params: list[dict[str, Any]] | None = None, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": ["console"],
        "responses": {
            "200": {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}},
            "4XX": {"description": "a bad parameter (`field` names it) or nothing there",
                    "content": {"application/json": {"schema": _ERR}}},
        },
    }  # fmt: skip
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "description": body,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return op


_RUN = _p("run", "a scored run's file name (see /ui/api/runs)")
_FILTER_PARAMS = [_q(n, d) for n, d in _FILTERS]

API_PATHS: dict[str, Any] = {
    "/ui/api/status": {"get": _op("what the console reads: registry, runs folder, reports, server")},
    "/ui/api/runs": {
        "get": _op("the scored runs, newest first"),
        "post": _op("score data with a threat model into a new run (a background job)", body="{model, data?}"),
    },
    "/ui/api/runs/{run}/flows": {
        "get": _op(
            "one page of the ranked suspicious list, filtered; page on with after=next_after",
            [_RUN, *_FILTER_PARAMS, _q("after", "rank cursor: rows after this rank"), _q("limit", "rows (1..500)")],
        )
    },
    "/ui/api/runs/{run}/count": {"get": _op("how many rows pass the filters", [_RUN, *_FILTER_PARAMS])},
    "/ui/api/runs/{run}/events/{rank}": {
        "get": _op("one event: its fields, words and their probabilities", [_RUN, _p("rank", "its rank")])
    },
    "/ui/api/runs/{run}/events/{rank}/verdict": {
        "post": _op(
            "record a verdict (1 high, 2 medium, 3 low risk) in the model's durable feedback log",
            [_RUN, _p("rank", "its rank")],
            body="{severity: 1|2|3, scope: event|pattern, fields?: [dst_ip, dst_port...], model?, note?}",
        )
    },
    "/ui/api/runs/{run}/ips/{ip}": {
        "get": _op("one IP: its most suspicious flows, flows over time, topic mix, peers", [_RUN, _p("ip", "address")])
    },
    "/ui/api/runs/{run}/hosts": {"get": _op("the run's host ranking, when it has one", [_RUN])},
    "/ui/api/retrain": {
        "post": _op("retrain a threat model with its feedback, then re-score (a background job)", body="{model, run?}")
    },
    "/ui/api/jobs/{job}": {"get": _op("a background job's status and result", [_p("job", "its id")])},
    "/ui/api/models": {"get": _op("the registry: models, versions, aliases, metrics")},
    "/ui/api/models/manifest": {"get": _op("one version's manifest", [_q("ref", "APP/NAME@VERSION", True)])},
    "/ui/api/models/diff": {
        "get": _op(
            "two versions' params and metrics side by side", [_q("a", "APP/NAME@V", True), _q("b", "APP/NAME@V", True)]
        )
    },
    "/ui/api/models/promote": {"post": _op("point an alias at a version", body="{ref, alias, confirm: true}")},
    "/ui/api/models/rollback": {
        "post": _op("point an alias at the version before the one it names", body="{model, alias, confirm: true}")
    },
    "/ui/api/serving": {
        "get": _op("a server's figures from its /metrics (rates between two calls)", [_q("url", "http://HOST:PORT")])
    },
    "/ui/api/reports": {"get": _op("past load-test reports")},
    "/ui/api/reports/curve": {"get": _op("one report's latency-vs-rate points", [_q("id", "report id", True)])},
    "/ui/api/reports/file": {
        "get": _op(
            "one report file, base64", [_q("id", "report id", True), _q("name", "report.html, report.json or a PNG")]
        )
    },
}
