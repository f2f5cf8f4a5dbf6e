"""The threat model behind ``mlscale serve``: score batches of flows, and the analyst feedback route.

Actions:

- ``score`` (``POST /v1/models/{name}/score``): ``{"flows": [{"src_ip": ..., "dst_ip": ...,
  "src_port": ..., "dst_port": ..., "proto": "tcp", "src_bytes": ..., ...}, ...]}`` (or
  ``{"queries": [...]}`` for a DNS model); each record gets its score (lower = more
  suspicious), its words and their probabilities. All requests of a micro-batch are
  scored in one vectorised call.
- ``feedback`` (``POST /v1/models/{name}/feedback``): ``{"severity": 3, "kind": "pattern",
  "match": {"dst_ip": "10.0.0.9", "dst_port": 8080}}`` or ``{"kind": "event", "match": {flow
  fields}}``; appended durably to the model's verdict log (``mlscale threat feedback`` writes
  the same log) for the next training.

>>> from mlscale.apps.threat.model import ThreatDetector
>>> from mlscale.apps.threat.synthetic import generate_flows
>>> det = ThreatDetector(topics=4, passes=2).fit(generate_flows(2000, hosts=30, seed=0))
>>> p = ThreatPredictor(det, model_ref="threat/demo", version=1, feedback_log=None)
>>> req = ScoreRequest(flows=[Flow(src_ip="10.0.0.1", dst_ip="10.0.0.2", dst_port=443, src_port=50000)])
>>> out = p.score_batch([req])
>>> len(out[0].results), out[0].results[0].src_word
(1, '443_tcp_0_0')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mlscale.apps.threat.feedback import EVENT_FIELDS, FeedbackLog, Verdict
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_ENDPOINT, FLOW_SCHEMA, LABEL_FIELDS, flow_fields
from mlscale.errors import ConfigError, DataError, MlscaleError, ValidationError
from mlscale.serve.predictor import Action, Predictor

__all__ = [
    "MAX_RECORDS",
    "FeedbackRequest",
    "FeedbackResponse",
    "Flow",
    "Query",
    "RecordScore",
    "ScoreRequest",
    "ScoreResponse",
    "ThreatPredictor",
    "events_from_scores",
]

#: The most records one request may carry; larger batches belong to ``mlscale threat score``.
MAX_RECORDS = 100_000
_Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
# Bounds a record is checked against when it is decoded (422 naming the field), so that no value
# overflows the int64 / int32 / timestamp columns inside a batch shared with other requests.
_Count = Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)]
_Int32 = Annotated[int, msgspec.Meta(ge=-(1 << 31), le=(1 << 31) - 1)]
#: Epoch seconds (microseconds must fit in int64): about the years 1678 to 2262.
_Ts = Annotated[float, msgspec.Meta(ge=-9.2e12, le=9.2e12)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=1e12)]


class Flow(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One flow to score (the flow schema's fields; ``ts`` in epoch seconds)."""

    src_ip: str
    dst_ip: str
    src_port: _Port = 0
    dst_port: _Port = 0
    proto: str = "tcp"
    ts: _Ts = 0.0
    duration: _Seconds = 0.0
    src_bytes: _Count = 0
    dst_bytes: _Count = 0
    src_pkts: _Count = 0
    dst_pkts: _Count = 0
    state: str | None = None
    flow_id: str | None = None


class Query(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One DNS query to score."""

    client_ip: str
    query: str
    server_ip: str | None = None
    qtype: _Int32 = -1
    rcode: _Int32 = -1
    frame_len: _Int32 = -1
    ts: _Ts = 0.0
    flow_id: str | None = None


class ScoreRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/models/{name}/score``: flows for a flow model, queries for a DNS model."""

    # Given, a list holds at least one record (the schema says so, as the server does); leave it out instead.
    flows: Annotated[list[Flow], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)] = msgspec.field(
        default_factory=list
    )
    queries: Annotated[list[Query], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)] = msgspec.field(
        default_factory=list
    )


class RecordScore(msgspec.Struct):
    """One record's score (lower = more suspicious) and the words behind it (DNS: ``dst_*`` = ``src_*``)."""

    flow_id: str | None
    score: float
    src_word: str
    src_prob: float
    dst_word: str
    dst_prob: float


class ScoreResponse(msgspec.Struct):
    """Answer of ``score``: one entry per record, in order."""

    model: str
    version: int
    results: list[RecordScore]


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/models/{name}/feedback``: one verdict."""

    severity: Literal[1, 2, 3]
    kind: Literal["event", "pattern"]
    match: dict[str, str | int | float | None]
    note: str = ""


class FeedbackResponse(msgspec.Struct):
    """Answer of ``feedback``: where the verdict was recorded."""

    model: str
    recorded: int
    log: str


def _flows_table(flows: Sequence[Flow]) -> pa.Table:
    n = len(flows)
    cols: dict[str, Any] = {
        "line": pa.array(np.zeros(n, np.int64)),
        "flow_id": pa.array([f.flow_id for f in flows], pa.string()),
        "ts": pa.array([round(f.ts * 1e6) for f in flows], pa.int64()).cast(FLOW_SCHEMA.field("ts").type),
    }
    for name in flow_fields(without=("line", "flow_id", "ts")):
        field = FLOW_SCHEMA.field(name)
        if name in ("service", *LABEL_FIELDS):
            cols[name] = pa.nulls(n, field.type)
        else:
            cols[name] = pa.array([getattr(f, name) for f in flows], field.type)
    cols["proto"] = pc.utf8_lower(cols["proto"])
    return pa.table(cols, schema=FLOW_SCHEMA)


def _queries_table(queries: Sequence[Query]) -> pa.Table:
    n = len(queries)
    cols: dict[str, Any] = {
        "line": pa.array(np.zeros(n, np.int64)),
        "flow_id": pa.array([q.flow_id for q in queries], pa.string()),
        "ts": pa.array([round(q.ts * 1e6) for q in queries], pa.int64()).cast(DNS_SCHEMA.field("ts").type),
        "client_ip": pa.array([q.client_ip for q in queries], pa.string()),
        "server_ip": pa.array([q.server_ip for q in queries], pa.string()),
        "query": pc.utf8_lower(pa.array([q.query.rstrip(".") for q in queries], pa.string())),
        "qtype": pa.array([q.qtype for q in queries], pa.int32()),
        "rcode": pa.array([q.rcode for q in queries], pa.int32()),
        "frame_len": pa.array([q.frame_len for q in queries], pa.int32()),
        "label": pa.nulls(n, pa.string()),
        "detailed_label": pa.nulls(n, pa.string()),
    }
    return pa.table(cols, schema=DNS_SCHEMA)


class ThreatPredictor(Predictor):
    """Serves a :class:`ThreatDetector` loaded from the registry."""

    def __init__(
        self, model: ThreatDetector, *, model_ref: str, version: int, feedback_log: FeedbackLog | Path | None
    ) -> None:
        model._check_fitted()
        self.model = model
        self.model_ref = model_ref
        self.version = version
        self.feedback_log = feedback_log if not isinstance(feedback_log, Path) else FeedbackLog(feedback_log)
        self._words: dict[int, str] = {}

    def actions(self) -> list[Action[Any]]:
        score: Action[ScoreRequest] = Action(
            name="score",
            summary="Score a batch of flows (or DNS queries): lower is more suspicious, with the words",
            request_type=ScoreRequest,
            response_type=ScoreResponse,
            run=self.score_batch,
            validate=self.validate_score,
        )
        feedback: Action[FeedbackRequest] = Action(
            name="feedback",
            summary="Record an analyst verdict (1 high, 2 medium, 3 low risk) for the next training",
            request_type=FeedbackRequest,
            response_type=FeedbackResponse,
            run=self.feedback_batch,
            validate=self.validate_feedback,
        )
        return [score, feedback]

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"kind": m.kind, "ips": m.n_ips, "words": m.n_words, "topics": m.topics, "scorer": m.scorer}

    def warm(self) -> None:
        self.model.index_ips()
        float(self.model.word_topic_.sum()) + float(self.model.ip_topic_.sum())
        ips = self.model.ips_.slice(0, 2).to_pylist() or ["10.0.0.1"]
        if self.model.kind == "dns":
            req = ScoreRequest(queries=[Query(client_ip=ips[0], query="example.com")])
        else:
            req = ScoreRequest(flows=[Flow(src_ip=ips[0], dst_ip=ips[-1], src_port=50000, dst_port=443)])
        for _ in range(3):
            self.score_batch([req])

    # -- score -----------------------------------------------------------------------------------

    def validate_score(self, req: ScoreRequest) -> int:
        """The right record type for this model; returns the cost (records)."""
        if self.model.kind == "dns":
            if req.flows or not req.queries:
                raise ValidationError("this is a DNS model: send {'queries': [...]}", field="queries")
            return len(req.queries)
        if req.queries or not req.flows:
            raise ValidationError("this is a flow model: send {'flows': [...]}", field="flows")
        return len(req.flows)

    def _word(self, code: int) -> str:
        text = self._words.get(code)
        if text is None:
            text = self.model.describe([code])[0]
            if len(self._words) < 1_000_000:
                self._words[code] = text
        return text

    def score_batch(self, requests: Sequence[ScoreRequest]) -> list[ScoreResponse | MlscaleError]:
        dns = self.model.kind == "dns"
        records: list[Any] = [r for req in requests for r in (req.queries if dns else req.flows)]
        try:
            table = _queries_table(records) if dns else _flows_table(records)
            s = self.model.score(table)
        except MlscaleError as err:
            return [err] * len(requests)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            return [ValidationError(f"cannot read the records ({err})", field="flows")] * len(requests)
        src_words = [self._word(c) for c in s.src_word.tolist()]
        dst_words = src_words if dns else [self._word(c) for c in s.dst_word.tolist()]
        scores, sp, dp = s.score.tolist(), s.src_prob.tolist(), s.dst_prob.tolist()
        out: list[ScoreResponse | MlscaleError] = []
        start = 0
        for req in requests:
            n = len(req.queries if dns else req.flows)
            results = [
                RecordScore(records[i].flow_id, scores[i], src_words[i], sp[i], dst_words[i], dp[i])
                for i in range(start, start + n)
            ]
            out.append(ScoreResponse(self.model_ref, self.version, results))
            start += n
        return out

    # -- feedback ---------------------------------------------------------------------------------

    def validate_feedback(self, req: FeedbackRequest) -> int:
        if self.feedback_log is None:
            raise ConfigError("this server records no feedback (no verdict log)")
        if self.model.kind == "dns":
            raise ValidationError("analyst feedback applies to flow models only", field="kind")
        self._verdict(req)
        return 1

    def _verdict(self, req: FeedbackRequest) -> Verdict:
        match = {k: v for k, v in req.match.items() if v is not None}
        if "proto" in match:
            match["proto"] = str(match["proto"]).lower()
        return Verdict(req.severity, req.kind, match, note=req.note, model=self.model_ref)

    def feedback_batch(self, requests: Sequence[FeedbackRequest]) -> list[FeedbackResponse | MlscaleError]:
        out: list[FeedbackResponse | MlscaleError] = []
        assert self.feedback_log is not None
        for req in requests:
            try:
                n = self.feedback_log.record([self._verdict(req)])
                out.append(FeedbackResponse(self.model_ref, n, str(self.feedback_log.path)))
            except MlscaleError as err:
                out.append(err)
            except OSError as err:
                out.append(MlscaleError(f"cannot record the verdict ({err.strerror})"))
        return out


def _read_any(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(path)
        if suffix in (".json", ".jsonl"):
            return pajson.read_json(path)
    except pa.ArrowInvalid as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    raise ValidationError("expected a .parquet, .csv or .json list from `mlscale threat score`", field="--scores")


def events_from_scores(
    path: Path, ranks: Sequence[int], severity: int, note: str = "", model: str = ""
) -> list[Verdict]:
    """Event verdicts for the rows of a scored list (``mlscale threat score`` output) with these ranks."""
    table = _read_any(Path(path))
    missing = [c for c in ("rank", *FLOW_ENDPOINT) if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: not a flow list from `mlscale threat score` (missing {', '.join(missing)})",
            hint="rate DNS records or other lists with pattern fields instead",
        )
    rows = table.filter(pc.is_in(table.column("rank"), pa.array(list(ranks), table.schema.field("rank").type)))
    found = set(rows.column("rank").to_pylist())
    absent = [r for r in ranks if r not in found]
    if absent:
        raise ValidationError(f"no row with rank {absent[:5]} in {path}", field="--rank")
    if "ts" in rows.column_names:
        ts = rows.column("ts")
        if not pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.timestamp("us"))
        rows = rows.set_column(rows.schema.get_field_index("ts"), "ts", ts.cast(pa.timestamp("us")).cast(pa.int64()))
    verdicts = []
    for row in rows.to_pylist():
        match = {k: row[k] for k in EVENT_FIELDS if k in row and row[k] is not None}
        if isinstance(match.get("duration"), int):
            match["duration"] = float(match["duration"])
        verdicts.append(Verdict(severity, "event", match, note=note, model=model))
    return verdicts
