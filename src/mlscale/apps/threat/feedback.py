"""Analyst feedback: verdicts on suspicious events or patterns, stored durably, used by the next training.

A :class:`Verdict` rates one *event* (a scored flow, with every field its
words are made of) or one *pattern* (any of ``src_ip``, ``dst_ip``,
``src_port``, ``dst_port``, ``proto``: every flow matching all given fields)
with a severity: ``1`` high, ``2`` medium, ``3`` low risk.

:class:`FeedbackLog` appends verdicts to a JSON-lines file, one verdict per
line, under an exclusive lock and with ``fsync`` before returning: a recorded
verdict survives a crash, and concurrent writers (the CLI, the API route) do
not interleave. A torn last line (a crash mid-write, never acknowledged) is
ignored on reading and cut off by the next write.
The default log of model ``threat/NAME`` is ``<registry>/.feedback/threat/NAME.jsonl``; with an object-store
registry it is a copy in the host cache, synced into the store on every record and read.

The next training takes low-risk verdicts into account the way Apache Spot
did, by re-injecting those events many times (``dup_factor``, Spot's
``DUPFACTOR``, default 1000) so their words become common in their IPs'
documents and leave the top of the list:

- a low-risk *event* is added ``dup_factor`` times to the corpus;
- every training flow matching a low-risk *pattern* counts ``1 + dup_factor`` times.

High and medium verdicts are kept for the record (and reported), not used in training.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = FeedbackLog(pathlib.Path(tmp, "f.jsonl"))
...     _ = log.record([Verdict(3, "pattern", {"dst_ip": "10.0.0.9", "dst_port": 8080})])
...     [(v.severity, v.kind, v.match) for v in log.read()]
[(3, 'pattern', {'dst_ip': '10.0.0.9', 'dst_port': 8080})]
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat.schema import FLOW_COUNTERS, FLOW_ENDPOINT, FLOW_SCHEMA, LABEL_FIELDS, flow_fields
from mlscale.errors import DataFormatError, ValidationError

__all__ = [
    "DEFAULT_DUP_FACTOR",
    "EVENT_FIELDS",
    "PATTERN_FIELDS",
    "SEVERITIES",
    "FeedbackLog",
    "Verdict",
    "events_table",
    "pattern_weights",
]

SEVERITIES = {1: "high", 2: "medium", 3: "low"}
LOW_RISK = 3
DEFAULT_DUP_FACTOR = 1000
PATTERN_FIELDS: tuple[str, ...] = FLOW_ENDPOINT
#: What an event verdict keeps of its flow: everything its words are made of.
EVENT_FIELDS: tuple[str, ...] = flow_fields(without=("line", "service", *LABEL_FIELDS))
_INT_FIELDS = frozenset({"src_port", "dst_port", *FLOW_COUNTERS, "ts"})
_EVENT_REQUIRED = FLOW_ENDPOINT


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Verdict:
    """An analyst's rating of one event or pattern (severity 1 high, 2 medium, 3 low risk)."""

    severity: int
    kind: Literal["event", "pattern"]
    match: Mapping[str, Any]
    note: str = ""
    model: str = ""
    recorded: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES or isinstance(self.severity, bool):
            raise ValidationError(
                f"expected 1 (high), 2 (medium) or 3 (low risk), got {self.severity!r}", field="severity"
            )
        if self.kind not in ("event", "pattern"):
            raise ValidationError(f"expected 'event' or 'pattern', got {self.kind!r}", field="kind")
        allowed = PATTERN_FIELDS if self.kind == "pattern" else EVENT_FIELDS
        unknown = sorted(set(self.match) - set(allowed))
        if unknown:
            raise ValidationError(
                f"unknown field(s) {', '.join(unknown)}; a {self.kind} has {', '.join(allowed)}", field="match"
            )
        if not self.match:
            raise ValidationError(f"a pattern needs at least one of {', '.join(PATTERN_FIELDS)}", field="match")
        if self.kind == "event":
            absent = [f for f in _EVENT_REQUIRED if self.match.get(f) is None]
            if absent:
                raise ValidationError(f"an event needs {', '.join(absent)}", field="match")
        for key, value in self.match.items():
            if key in _INT_FIELDS and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ValidationError(f"expected an integer, got {value!r}", field=key)
            if key in ("src_port", "dst_port") and value is not None and not 0 <= value <= 65535:
                raise ValidationError(f"expected a port in 0..65535, got {value}", field=key)

    def to_json(self) -> str:
        return json.dumps(
            {
                "severity": self.severity,
                "kind": self.kind,
                "match": dict(self.match),
                "note": self.note,
                "model": self.model,
                "recorded": self.recorded,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("expected a JSON object")
        return cls(
            severity=raw["severity"],
            kind=raw["kind"],
            match=raw["match"],
            note=raw.get("note", ""),
            model=raw.get("model", ""),
            recorded=raw.get("recorded", ""),
        )


class FeedbackLog:
    """An append-only, durable JSON-lines file of verdicts.

    ``sync``, when given, is called after each record (while it raises, the
    record is not acknowledged; the verdicts stay in the file for the next
    sync) and before each read: how a store that keeps the log elsewhere
    (an object store) makes it durable there and brings in other hosts' verdicts.
    """

    def __init__(self, path: Path, *, sync: Callable[[], object] | None = None) -> None:
        self.path = Path(path)
        self._sync = sync

    def record(self, verdicts: Sequence[Verdict]) -> int:
        """Append verdicts (all or none reach the disk together) and return how many."""
        if not verdicts:
            return 0
        payload = "".join(v.to_json() + "\n" for v in verdicts).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A torn line left by a crash (a verdict never acknowledged) is cut off before appending.
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(max(0, size - (1 << 20)))
                    tail = fh.read()
                if not tail.endswith(b"\n"):
                    cut = tail.rfind(b"\n")
                    os.ftruncate(fd, size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail)))
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._sync is not None:
            self._sync()
        return len(verdicts)

    def read(self) -> list[Verdict]:
        """Every recorded verdict, oldest first (a torn last line is skipped; other bad lines raise)."""
        if self._sync is not None:
            self._sync()
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        out: list[Verdict] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(Verdict.from_json(line))
            except (ValueError, KeyError, TypeError, ValidationError) as err:
                if number == len(lines):  # the torn tail of an interrupted write
                    continue
                raise DataFormatError(
                    f"not a verdict ({err})", path=str(self.path), line=number, hint="fix or remove that line"
                ) from None
        return out


def events_table(verdicts: Sequence[Verdict], severity: int = LOW_RISK) -> pa.Table:
    """The event verdicts of one severity as flows (flow schema), ready to re-inject."""
    rows = [dict(v.match) for v in verdicts if v.kind == "event" and v.severity == severity]
    columns: dict[str, pa.Array] = {}
    for f in FLOW_SCHEMA:
        values = [r.get(f.name) for r in rows]
        if f.name in ("src_port", "dst_port", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts", "line"):
            values = [0 if x is None else x for x in values]
        elif f.name == "ts":
            values = [0 if x is None else x for x in values]
            columns[f.name] = pa.array(values, pa.int64()).cast(f.type)
            continue
        elif f.name == "duration":
            values = [0.0 if x is None else x for x in values]
        columns[f.name] = pa.array(values, f.type)
    return pa.table(columns, schema=FLOW_SCHEMA)


def pattern_weights(
    verdicts: Sequence[Verdict], dup_factor: int, severity: int = LOW_RISK
) -> Callable[[pa.RecordBatch | pa.Table], npt.NDArray[np.float64] | None]:
    """A function giving each flow of a batch its training weight: ``1 + dup_factor`` if it matches a
    pattern of that severity, else 1 (None when no pattern applies to the batch)."""
    patterns = [dict(v.match) for v in verdicts if v.kind == "pattern" and v.severity == severity]

    def weights(batch: pa.RecordBatch | pa.Table) -> npt.NDArray[np.float64] | None:
        if not patterns:
            return None
        hit = np.zeros(batch.num_rows, dtype=bool)
        for pattern in patterns:
            mask = np.ones(batch.num_rows, dtype=bool)
            for key, value in pattern.items():
                column = batch.column(batch.schema.get_field_index(key))
                if key == "proto":
                    value = str(value).lower()
                eq = pc.fill_null(pc.equal(column, pa.scalar(value, column.type)), False)
                mask &= np.asarray(eq.to_numpy(zero_copy_only=False), dtype=bool)
            hit |= mask
        if not hit.any():
            return None
        return np.where(hit, 1.0 + dup_factor, 1.0)

    return weights
