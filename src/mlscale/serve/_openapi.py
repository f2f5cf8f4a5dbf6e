"""``/openapi.json``: every route of the service, with the JSON schemas of each model's actions.

The request and response schemas come from the predictors' own types
(``msgspec.json.schema_components``), so the document cannot drift from what
the server actually decodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from mlscale._version import __version__

if TYPE_CHECKING:
    from mlscale.serve._models import ModelSlot

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{name}"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}},
    }


_ERRORS = {
    "400": _error("malformed JSON, query string or HTTP request"),
    "401": _error("missing or wrong bearer token"),
    "404": _error("no such model or action"),
    "405": _error("method not allowed on this route"),
    "413": _error("the body is larger than the limit, or the request asks for more work than one request may"),
    "422": _error("a field has the wrong type or is out of range (`field` names it)"),
    "503": _error("overloaded or the deadline cannot be met: retry after `Retry-After` seconds"),
}

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "the offending field, for 422"},
            },
        }
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _simple_get(summary: str, description: str, schema: dict[str, Any], codes: tuple[str, ...] = ()) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json(description, schema)}
    responses.update({c: _ERRORS[c] for c in codes})
    return {"get": {"summary": summary, "responses": responses}}


def _query_schema(request_type: type[Any], name: str) -> dict[str, Any]:
    """The schema of query parameter ``name``: its request field's, when that is a scalar; else a string.

    So ``k`` is documented as the bounded integer the server checks, while list fields given in the
    query as comma-separated text (``include=1,2``) stay strings.
    """
    try:
        field_type = msgspec.inspect.type_info(request_type)
    except (TypeError, ValueError):  # pragma: no cover - not a msgspec type
        return {"type": "string"}
    for f in getattr(field_type, "fields", ()):
        if f.name == name and isinstance(f.type, msgspec.inspect.IntType | msgspec.inspect.BoolType):
            schema: dict[str, Any] = {"type": "integer" if isinstance(f.type, msgspec.inspect.IntType) else "boolean"}
            if isinstance(f.type, msgspec.inspect.IntType):
                for key, attr in (("minimum", "ge"), ("maximum", "le")):
                    bound = getattr(f.type, attr)
                    if bound is not None:
                        schema[key] = bound
            return schema
    return {"type": "string"}


def openapi_document(slots: Mapping[str, ModelSlot], *, secured: bool) -> bytes:
    """The OpenAPI 3.1 document of a server serving ``slots``, encoded."""
    types: dict[str, tuple[type[Any], type[Any]]] = {}
    actions: dict[str, list[str]] = {}
    for slot in slots.values():
        for name, act in slot.live.actions.items():
            types.setdefault(name, (act.request_type, act.response_type))
            actions.setdefault(name, []).append(slot.name)
    flat = [t for pair in types.values() for t in pair]
    schemas, components = msgspec.json.schema_components(flat, ref_template=_REF)
    components = {**components, "Error": _ERROR_SCHEMA}
    names = sorted(slots)
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "a served model",
        "schema": {"type": "string", "enum": names},
    }
    timeout_param = {
        "name": "X-Request-Timeout-Ms",
        "in": "header",
        "required": False,
        "description": "deadline of this request in milliseconds (default: the server's --timeout)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 600000},
    }
    paths: dict[str, Any] = {
        "/healthz": _simple_get("Liveness: the process answers", "alive", {"type": "object"}),
        "/readyz": {
            "get": {
                "summary": "Readiness: models loaded and warmed, not draining",
                "responses": {
                    "200": _json("ready", {"type": "object"}),
                    "503": _json("not ready", {"type": "object"}),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of every worker",
                "responses": {"200": {"description": "text exposition format 0.0.4", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": _simple_get("This document", "OpenAPI 3.1", {"type": "object"}),
        "/v1/models": _simple_get("The served models and their versions", "models", {"type": "object"}),
        "/v1/models/{name}": {
            "parameters": [name_param],
            **_simple_get("One served model: version, metrics, actions", "model", {"type": "object"}, ("404",)),
        },
    }
    for i, action in enumerate(types):
        one_action = next(a for s in slots.values() if (a := s.live.actions.get(action)) is not None)
        models = {**name_param, "schema": {"type": "string", "enum": sorted(actions[action])}}
        ok = _json("one result per request, in order", schemas[2 * i + 1])
        errors = {c: _ERRORS[c] for c in ("400", "404", "413", "422", "503")}
        paths[f"/v1/models/{{name}}/{action}"] = {
            "parameters": [models],
            "post": {
                "summary": one_action.summary,
                "parameters": [timeout_param],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schemas[2 * i]}},
                },
                "responses": {"200": ok, **errors},
            },
        }
        if one_action.from_path is not None:
            key = one_action.path_key
            params: list[dict[str, Any]] = [
                models,
                {"name": key, "in": "path", "required": True, "schema": {"type": "string"}},
            ]
            params += [
                {
                    "name": q,
                    "in": "query",
                    "required": False,
                    "description": d,
                    "schema": _query_schema(one_action.request_type, q),
                }
                for q, d in one_action.query_params.items()
            ]
            paths[f"/v1/models/{{name}}/{action}/{{{key}}}"] = {
                "parameters": params,
                "get": {
                    "summary": f"{one_action.summary} (one {key})",
                    "parameters": [timeout_param],
                    "responses": {"200": ok, **errors},
                },
            }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mlscale prediction service",
            "version": __version__,
            "description": "Micro-batched predictions from models in an mlscale registry.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
        for route in ("/healthz", "/readyz"):
            doc["paths"][route]["get"]["security"] = []
    return msgspec.json.encode(doc)
