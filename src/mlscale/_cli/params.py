"""Command-line flags generated from an application's params classes (the defaults live only there).

Every field of every family becomes one ``--field-name`` flag whose parser
default is ``None``, so what the user typed is known apart from the default:
:func:`params_from_args` fills the rest from the engine's own defaults, then
the dataclass's.

>>> import argparse, dataclasses
>>> from mlscale.apps.base import param
>>> @dataclasses.dataclass(frozen=True)
... class Knn:
...     k: int = param(10, "neighbours", minimum=1)
>>> parser = argparse.ArgumentParser()
>>> add_params_arguments(parser, {"knn": Knn})
>>> params_from_args({"knn": Knn}, parser.parse_args(["--k", "3"]))
('knn', Knn(k=3))
>>> params_to_argv(Knn(k=4))
['--k', '4']

Without ``--model``, the family is the first one, or the first that takes every flag given:

>>> @dataclasses.dataclass(frozen=True)
... class Auto:
...     seed: int = param(0, "seed")
>>> parser = argparse.ArgumentParser()
>>> add_params_arguments(parser, {"auto": Auto, "knn": Knn})
>>> params_from_args({"auto": Auto, "knn": Knn}, parser.parse_args([]))
('auto', Auto(seed=0))
>>> params_from_args({"auto": Auto, "knn": Knn}, parser.parse_args(["--k", "3"]))
('knn', Knn(k=3))
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from mlscale.apps.base import params_from_dict
from mlscale.errors import ValidationError

__all__ = ["FAMILY_DEST", "add_params_arguments", "params_from_args", "params_to_argv"]

FAMILY_DEST = "model_family"


def _flag(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("flag") or "--" + f.name.replace("_", "-"))


def _scalar(annotation: Any) -> tuple[type[Any], tuple[Any, ...] | None]:
    """``int | None`` -> (int, None); ``Literal['a', 'b']`` -> (str, ('a', 'b'))."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return type(args[0]), tuple(args)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _scalar(args[0])
    return (annotation if isinstance(annotation, type) else str), None


def _fields(classes: Mapping[str, type[Any]], only: Sequence[str] | None) -> dict[str, list[tuple[str, Any]]]:
    """Field name -> [(family, field)], in first-seen order."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for family, cls in classes.items():
        for f in dataclasses.fields(cls):
            if only is None or f.name in only:
                out.setdefault(f.name, []).append((family, f))
    return out


def add_params_arguments(
    parser: argparse.ArgumentParser, classes: Mapping[str, type[Any]], *, only: Sequence[str] | None = None
) -> None:
    """Add one flag per params field (``only``: these fields), and ``--model FAMILY`` when there are several."""
    group = parser.add_argument_group("model")
    families = list(classes)
    if len(families) > 1:
        # None, not the first family: params_from_args can then tell "no --model" apart and pick the family
        # the other flags belong to (``--factors 8`` alone means a family that has factors).
        described = "; ".join(f"{fam}: {_summary(cls)}" if _summary(cls) else fam for fam, cls in classes.items())
        group.add_argument(
            "--model",
            dest=FAMILY_DEST,
            choices=families,
            default=None,
            help=f"model family ({described}). Default: {families[0]}, or the first family that takes every "
            "model flag given",
        )
    for name, owners in _fields(classes, only).items():
        family, f = owners[0]
        hints = typing.get_type_hints(classes[family])
        kind, literal = _scalar(hints[name])
        defaults = {fam: fld.default for fam, fld in owners}
        if len(set(map(repr, defaults.values()))) == 1:
            shown = f"{owners[0][1].default}"
        else:
            shown = ", ".join(f"{fam}: {value}" for fam, value in defaults.items())
        if len(owners) < len(families):
            shown += f"; {'/'.join(fam for fam, _ in owners)} only"
        text = f.metadata.get("help", "")
        helptext = argparse.SUPPRESS if f.metadata.get("hidden") else f"{text} (default: {shown})".strip()
        group.add_argument(
            _flag(f),
            dest=f"param_{name}",
            metavar=name.upper() if not (f.metadata.get("choices") or literal) else None,
            type=kind,
            choices=f.metadata.get("choices") or literal,
            default=None,
            help=helptext,
        )


def params_from_args(
    classes: Mapping[str, type[Any]], args: argparse.Namespace, defaults: Mapping[str, Any] | None = None
) -> tuple[str, Any]:
    """(family, params) from the parsed flags; unset fields take ``defaults`` (the engine's), then the class's."""
    family = getattr(args, FAMILY_DEST, None) or _family_of_flags(classes, args)
    cls = classes[family]
    given = {
        f.name: getattr(args, f"param_{f.name}")
        for f in dataclasses.fields(cls)
        if getattr(args, f"param_{f.name}", None) is not None
    }
    return family, params_from_dict(cls, {**(defaults or {}), **given})


def _summary(cls: type[Any]) -> str:
    """The first line of a params class's docstring (what ``--model``'s help says of the family)."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(cls.__name__ + "(") else doc.strip().split("\n")[0].rstrip(".")


def _family_of_flags(classes: Mapping[str, type[Any]], args: argparse.Namespace) -> str:
    """No ``--model``: the first family, unless flags were given that it lacks; then the first that has them all."""
    given = {name for name in _fields(classes, None) if getattr(args, f"param_{name}", None) is not None}
    for family, cls in classes.items():
        if given <= {f.name for f in dataclasses.fields(cls)}:
            return family
    flags = ", ".join(sorted(_flag(owners[0][1]) for name, owners in _fields(classes, None).items() if name in given))
    raise ValidationError(f"no model family takes all of {flags}; pick one with --model", field="--model")


def params_to_argv(params: Any, family: str | None = None) -> list[str]:
    """The flags that give ``params`` back (for tests and for printing a reproducible command)."""
    argv = [] if family is None else ["--model", family]
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if value is not None:
            argv += [_flag(f), str(value)]
    return argv
