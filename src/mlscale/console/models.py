"""The registry as the console shows it: apps, models, versions, aliases, manifests; promote, roll back, diff.

Every function takes the :class:`~mlscale.registry.Store` and returns plain
JSON data; the moves (:func:`promote`, :func:`rollback`) go through the
store's own :meth:`~mlscale.registry.Store.promote`, as ``mlscale models
promote`` does.
"""

from __future__ import annotations

from typing import Any

from mlscale.errors import ValidationError
from mlscale.registry import LATEST, Manifest, ModelRef, Store

__all__ = ["diff", "manifest", "overview", "promote", "rollback"]


def _version(m: Manifest) -> dict[str, Any]:
    return {
        "version": m.version,
        "created": m.created,
        "engine": m.engine,
        "metrics": dict(m.metrics),
        "params": dict(m.params),
        "feedback_verdicts": m.extra.get("feedback_verdicts"),
        "data": m.extra.get("data"),
    }


def overview(store: Store) -> dict[str, Any]:
    """Every model of the registry with its versions and aliases."""
    models: dict[tuple[str, str], list[Manifest]] = {}
    for m in store.list():
        models.setdefault((m.app, m.name), []).append(m)
    out = []
    for (app, name), versions in sorted(models.items()):
        out.append(
            {
                "app": app,
                "name": name,
                "ref": f"{app}/{name}",
                "aliases": store.aliases(app, name),
                "versions": [_version(m) for m in sorted(versions, key=lambda m: m.version, reverse=True)],
            }
        )
    return {"registry": store.location, "models": out}


def _ref(text: str, field: str) -> ModelRef:
    try:
        return ModelRef.parse(text)
    except ValidationError as err:
        raise ValidationError(err.message, field=field) from None


def manifest(store: Store, ref: str) -> dict[str, Any]:
    """One version's manifest and its model's aliases."""
    m = store.resolve(_ref(ref, "ref"))
    return {"manifest": m.to_dict(), "aliases": store.aliases(m.app, m.name)}


def diff(store: Store, a: str, b: str) -> dict[str, Any]:
    """Params and metrics of two versions side by side, with what changed."""
    ma, mb = store.resolve(_ref(a, "a")), store.resolve(_ref(b, "b"))

    def rows(x: dict[str, Any], y: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"key": k, "a": x.get(k), "b": y.get(k), "changed": x.get(k) != y.get(k)} for k in sorted({*x, *y})]

    return {
        "a": str(ma.ref),
        "b": str(mb.ref),
        "params": rows(ma.params, mb.params),
        "metrics": rows(dict(ma.metrics), dict(mb.metrics)),
        "engine": {"a": ma.engine, "b": mb.engine},
        "data_fingerprint": {"a": ma.data_fingerprint, "b": mb.data_fingerprint},
    }


def _alias(alias: str) -> str:
    if not alias or alias == LATEST:
        raise ValidationError(
            f"expected an alias such as production (not {LATEST!r}, which moves itself)", field="alias"
        )
    return alias


def promote(store: Store, ref: str, alias: str) -> dict[str, Any]:
    """Point ``alias`` at the version ``ref`` names; says where it was."""
    r = _ref(ref, "ref")
    before = store.aliases(r.app, r.name).get(_alias(alias))
    m = store.promote(r, alias)
    return {"model": f"{m.app}/{m.name}", "alias": alias, "version": m.version, "was": before}


def rollback(store: Store, model: str, alias: str) -> dict[str, Any]:
    """Point ``alias`` at the highest version below the one it names now."""
    r = _ref(model, "model")
    aliases = store.aliases(r.app, r.name)
    current = aliases.get(_alias(alias))
    if current is None:
        raise ValidationError(f"{r.app}/{r.name} has no alias {alias!r} to roll back", field="alias")
    older = sorted(m.version for m in store.list(r.app) if m.name == r.name and m.version < current)
    if not older:
        raise ValidationError(f"{r.app}/{r.name}@{alias} is version {current}: there is no older one", field="alias")
    m = store.promote(ModelRef(r.app, r.name, str(older[-1])), alias)
    return {"model": f"{m.app}/{m.name}", "alias": alias, "version": m.version, "was": current}
