"""The shape of an interaction log, fitted from a real data set: :class:`InteractionProfile`.

An :class:`InteractionProfile` holds how many interactions each user has (a
quantile function with a Pareto tail), how popularity falls off with item
rank, the rating distribution, when users are active, and the users : items :
rows ratios. :meth:`InteractionProfile.fit` measures it from a table;
:func:`default_profile` is the one fitted from MovieLens-100k, kept as
constants so nothing needs downloading. :mod:`mlscale.apps.recommend.synthetic`
generates logs of any size with that shape.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.recommend import _profile
from mlscale.errors import DataError, DataFormatError, ValidationError

__all__ = ["InteractionProfile", "default_profile"]

_FORMAT = "mlscale.interaction-profile"
_VERSION = 1


def _floats(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("expected a non-empty list of numbers", field=name)
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError("expected a list of numbers", field=name) from None


@dataclass(frozen=True, slots=True)
class InteractionProfile:
    """The shape of an interaction log, fitted from real data; see :meth:`fit`.

    Sizes (``n_rows``, ``n_users``, ``n_items``) are those of the source and
    set the users : items : rows ratios. ``activity_*`` describe interactions
    per user: quantile values at ``activity_probs`` (up to
    ``activity_tail_p``), a Pareto tail of exponent ``activity_tail_alpha``
    above it, and the largest user as a share of the catalogue.
    ``popularity_shares`` give an item's interactions over the mean item's at
    normalised ranks ``popularity_ranks``. ``rating_values``/``rating_probs``
    are the rating pmf. Times are Unix seconds: the log spans
    ``time_min..time_max`` and ``time_start_quantiles``/``time_span_quantiles``
    give each user's first time and active span as fractions of that range.

    >>> p = default_profile()
    >>> p.n_users, p.n_items, p.rating_values
    (943, 1682, (1.0, 2.0, 3.0, 4.0, 5.0))
    >>> InteractionProfile.from_json(p.to_json()) == p
    True
    """

    name: str
    n_rows: int
    n_users: int
    n_items: int
    activity_probs: tuple[float, ...]
    activity_values: tuple[float, ...]
    activity_tail_p: float
    activity_tail_alpha: float
    activity_max_fraction: float
    popularity_ranks: tuple[float, ...]
    popularity_shares: tuple[float, ...]
    rating_values: tuple[float, ...]
    rating_probs: tuple[float, ...]
    time_min: int
    time_max: int
    time_start_quantiles: tuple[float, ...]
    time_span_quantiles: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("n_rows", "n_users", "n_items"):
            if getattr(self, name) < 1:
                raise ValidationError(f"expected a whole number >= 1, got {getattr(self, name)!r}", field=name)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple | float) and not np.all(np.isfinite(value)):
                raise ValidationError("expected finite numbers (no NaN or infinity)", field=f.name)
        if len(self.activity_probs) != len(self.activity_values) or len(self.activity_probs) < 2:
            raise ValidationError("activity_probs and activity_values need the same length >= 2")
        if np.any(np.diff(self.activity_probs) <= 0) or min(self.activity_values) <= 0:
            raise ValidationError("expected increasing probabilities and positive counts", field="activity_probs")
        if not 0.0 < self.activity_tail_p < 1.0 or self.activity_tail_alpha <= 1.0:
            raise ValidationError("expected 0 < activity_tail_p < 1 and activity_tail_alpha > 1")
        if len(self.popularity_ranks) != len(self.popularity_shares) or min(self.popularity_shares) <= 0:
            raise ValidationError("popularity_ranks and popularity_shares need the same length and positive shares")
        if np.any(np.diff(self.popularity_ranks) <= 0):
            raise ValidationError("expected increasing normalised ranks", field="popularity_ranks")
        if len(self.rating_values) != len(self.rating_probs) or min(self.rating_probs) < 0:
            raise ValidationError("rating_values and rating_probs need the same length, probs >= 0")
        if not math.isclose(sum(self.rating_probs), 1.0, abs_tol=1e-4):
            raise ValidationError(
                f"expected probabilities summing to 1, got {sum(self.rating_probs)}", field="rating_probs"
            )
        if self.time_max < self.time_min:
            raise ValidationError("expected time_min <= time_max", field="time_max")
        for name in ("time_start_quantiles", "time_span_quantiles"):
            q = getattr(self, name)
            if len(q) != len(_profile.TIME_PROBS) or np.any(np.diff(q) < 0) or min(q) < 0 or max(q) > 1:
                raise ValidationError(
                    f"expected {len(_profile.TIME_PROBS)} non-decreasing fractions in [0, 1]", field=name
                )

    @classmethod
    def fit(cls, table: pa.Table, *, name: str = "custom") -> InteractionProfile:
        """Measure the profile of a log: columns ``user``, ``item``, optional ``rating``, ``timestamp``.

        Ids may be of any type. Without ``rating`` every rating is 1.0 (implicit
        feedback); without ``timestamp`` the time model of the default profile
        is used.
        """
        missing = [c for c in ("user", "item") if c not in table.column_names]
        if missing:
            raise DataFormatError(
                f"missing column(s) {', '.join(missing)}; found {', '.join(table.column_names) or 'none'}",
                hint="the log needs columns user and item (rating and timestamp are optional)",
            )
        table = table.filter(pc.and_(pc.is_valid(table["user"]), pc.is_valid(table["item"])))
        if table.num_rows == 0:
            raise DataError("cannot fit a profile to an empty log (no rows with both user and item)")
        has_time = "timestamp" in table.column_names and table["timestamp"].null_count < table.num_rows
        if has_time:
            ts = table["timestamp"]
            if pa.types.is_timestamp(ts.type):
                ts = pc.cast(pc.cast(ts, pa.timestamp("s")), pa.int64())
            elif not pa.types.is_integer(ts.type) and not pa.types.is_floating(ts.type):
                raise DataFormatError(f"column timestamp has type {ts.type}; expected Unix seconds or a timestamp")
            table = table.set_column(table.column_names.index("timestamp"), "timestamp", pc.cast(ts, pa.int64()))
            per_user = table.group_by("user").aggregate([("item", "count"), ("timestamp", "min"), ("timestamp", "max")])
        else:
            per_user = table.group_by("user").aggregate([("item", "count")])
        user_counts = per_user["item_count"].to_numpy()
        item_counts = pc.value_counts(table["item"]).field("counts").to_numpy()
        probs, values, alpha = _profile.fit_activity(user_counts)
        ranks, shares = _profile.fit_popularity(item_counts)
        rating_values, rating_probs = _fit_ratings(table)
        if has_time:
            first = per_user["timestamp_min"].to_numpy(zero_copy_only=False).astype(np.float64)
            last = per_user["timestamp_max"].to_numpy(zero_copy_only=False).astype(np.float64)
            ok = ~np.isnan(first)
            t0, t1 = int(np.min(first[ok])), int(np.max(last[ok]))
            span = max(t1 - t0, 1)
            starts = _profile.rounded(np.quantile((first[ok] - t0) / span, _profile.TIME_PROBS))
            spans = _profile.rounded(np.quantile((last[ok] - first[ok]) / span, _profile.TIME_PROBS))
        else:
            base = default_profile()
            t0, t1 = base.time_min, base.time_max
            starts, spans = list(base.time_start_quantiles), list(base.time_span_quantiles)
        n_items = len(item_counts)
        return cls(
            name=name,
            n_rows=table.num_rows,
            n_users=len(user_counts),
            n_items=n_items,
            activity_probs=tuple(probs),
            activity_values=tuple(values),
            activity_tail_p=_profile.ACTIVITY_TAIL_P,
            activity_tail_alpha=alpha,
            activity_max_fraction=_profile.rounded([min(1.0, float(user_counts.max()) / n_items)])[0],
            popularity_ranks=tuple(ranks),
            popularity_shares=tuple(shares),
            rating_values=tuple(rating_values),
            rating_probs=tuple(rating_probs),
            time_min=t0,
            time_max=t1,
            time_start_quantiles=tuple(starts),
            time_span_quantiles=tuple(spans),
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain JSON-ready values, with a format tag and version."""
        out: dict[str, Any] = {"format": _FORMAT, "version": _VERSION}
        for key, value in asdict(self).items():
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InteractionProfile:
        """Rebuild a profile from :meth:`to_dict` output; unknown keys are refused."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValidationError(f'not an interaction profile (expected "format": "{_FORMAT}")')
        if data.get("version") != _VERSION:
            raise ValidationError(f"unsupported profile version {data.get('version')!r}; expected {_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"format", "version"})
        absent = sorted(names - set(data))
        if unknown or absent:
            raise ValidationError(
                "profile keys do not match"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(absent)}" if absent else "")
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            value = data[f.name]
            if f.name == "name":
                kwargs[f.name] = str(value)
            elif f.name in ("n_rows", "n_users", "n_items", "time_min", "time_max"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValidationError(f"expected a whole number, got {value!r}", field=f.name)
                kwargs[f.name] = value
            elif f.name in ("activity_tail_p", "activity_tail_alpha", "activity_max_fraction"):
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValidationError(f"expected a number, got {value!r}", field=f.name)
                kwargs[f.name] = float(value)
            else:
                kwargs[f.name] = _floats(value, f.name)
        return cls(**kwargs)

    def to_json(self) -> str:
        """The profile as a small JSON document (no pickle)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> InteractionProfile:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"invalid JSON: {err.msg}", line=err.lineno) from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` (atomically) and return it."""
        out = Path(path)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InteractionProfile:
        """Read a profile saved by :meth:`save`."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{p}: no such profile file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise DataFormatError(f"cannot read profile: {err}", path=str(p)) from None
        try:
            return cls.from_json(text)
        except DataFormatError as err:
            raise DataFormatError(err.reason, path=str(p), line=err.line) from None
        except ValidationError as err:
            raise DataFormatError(str(err), path=str(p), hint="write profiles with InteractionProfile.save") from None


def _fit_ratings(table: pa.Table) -> tuple[list[float], list[float]]:
    if "rating" not in table.column_names or table["rating"].null_count == table.num_rows:
        return [1.0], [1.0]
    rating = table["rating"]
    if not pa.types.is_integer(rating.type) and not pa.types.is_floating(rating.type):
        raise DataFormatError(f"column rating has type {rating.type}; expected numbers")
    r = pc.drop_null(rating).to_numpy().astype(np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return [1.0], [1.0]
    values, counts = np.unique(r, return_counts=True)
    if values.size > 64:
        # Continuous scores: keep 64 equally likely quantiles rather than every value.
        return _profile.rounded(np.quantile(r, (np.arange(64) + 0.5) / 64)), [1.0 / 64] * 64
    return _profile.rounded(values), _profile.rounded(counts / counts.sum())


def default_profile() -> InteractionProfile:
    """The profile fitted from MovieLens-100k (stored in the package as constants)."""
    return InteractionProfile.from_dict(_profile.MOVIELENS_100K)
