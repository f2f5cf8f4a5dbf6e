"""The two record schemas every threat input is turned into: flows and DNS queries.

Whatever the source (nfdump, nfcapd, Zeek, Argus, tshark), ingest yields Arrow
record batches of :data:`FLOW_SCHEMA` or :data:`DNS_SCHEMA`, written as Parquet.

Flow columns:

=================== ============= ==============================================================
column              type          meaning
=================== ============= ==============================================================
``line``            int64         1-based line of the record in its source file (0: unknown)
``flow_id``         string        the log's own id (Zeek ``uid``); null when the log has none
``ts``              timestamp[us] start time as the log wrote it (Zeek: UTC; nfdump/Argus: the
                                  collector's wall clock, no zone)
``src_ip``          string        originator address (IPv4 or IPv6 text)
``src_port``        int32         originator port (ICMP: type; 0 when the log has none)
``dst_ip``          string        responder address
``dst_port``        int32         responder port (ICMP: code or type*256+code, as the log wrote it)
``proto``           string        lower-case transport protocol (``tcp``, ``udp``, ``icmp``...)
``service``         string        application protocol when the log knows it (Zeek), else null
``duration``        float64       seconds (0 when unknown)
``src_bytes``       int64         bytes sent by the originator, IP headers included when the log
                                  has them (Zeek ``orig_ip_bytes``, nfdump ``ibyt``)
``dst_bytes``       int64         bytes sent by the responder
``src_pkts``        int64         packets sent by the originator
``dst_pkts``        int64         packets sent by the responder
``state``           string        connection state as the log wrote it (Zeek ``conn_state``,
                                  nfdump TCP flags, Argus ``State``)
``label``           string        ground truth when the log carries one (``Malicious``...): kept
                                  for evaluation only, never a feature
``detailed_label``  string        the log's finer label, same rule
=================== ============= ==============================================================

DNS columns: ``line``, ``flow_id``, ``ts``, ``client_ip`` (who asked), ``server_ip``,
``query`` (the name, lower case, no trailing dot), ``qtype``, ``rcode`` (int32, -1 when
unknown), ``frame_len`` (int32, -1 when the log has no frame length, as Zeek's), ``label``,
``detailed_label``.

Every module that needs a list of these columns derives it from the schemas
(:func:`flow_fields`, :func:`dns_fields`, :data:`FLOW_ENDPOINT`...), so a column is
added or renamed in one place.

>>> FLOW_SCHEMA.names[:5]
['line', 'flow_id', 'ts', 'src_ip', 'src_port']
>>> flow_fields(without=("line", "ts", *FLOW_ENDPOINT, *FLOW_COUNTERS, *LABEL_FIELDS))
('flow_id', 'service', 'duration', 'state')
>>> is_malicious(pa.array(["Malicious", "Benign", None, "flow=From-Botnet-V1"])).to_pylist()
[True, False, False, True]
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DNS_SCHEMA",
    "FLOW_COUNTERS",
    "FLOW_ENDPOINT",
    "FLOW_SCHEMA",
    "FLOW_TIME",
    "LABEL_FIELDS",
    "dns_fields",
    "flow_fields",
    "is_malicious",
]

FLOW_TIME = pa.timestamp("us")

FLOW_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("flow_id", pa.string()),
        ("ts", FLOW_TIME),
        ("src_ip", pa.string()),
        ("src_port", pa.int32()),
        ("dst_ip", pa.string()),
        ("dst_port", pa.int32()),
        ("proto", pa.string()),
        ("service", pa.string()),
        ("duration", pa.float64()),
        ("src_bytes", pa.int64()),
        ("dst_bytes", pa.int64()),
        ("src_pkts", pa.int64()),
        ("dst_pkts", pa.int64()),
        ("state", pa.string()),
        ("label", pa.string()),
        ("detailed_label", pa.string()),
    ],
    metadata={"mlscale": "threat-flows-1"},
)

DNS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("flow_id", pa.string()),
        ("ts", FLOW_TIME),
        ("client_ip", pa.string()),
        ("server_ip", pa.string()),
        ("query", pa.string()),
        ("qtype", pa.int32()),
        ("rcode", pa.int32()),
        ("frame_len", pa.int32()),
        ("label", pa.string()),
        ("detailed_label", pa.string()),
    ],
    metadata={"mlscale": "threat-dns-1"},
)


def _fields(schema: pa.Schema, without: Iterable[str]) -> tuple[str, ...]:
    drop = set(without)
    unknown = sorted(drop - set(schema.names))
    if unknown:
        raise ValueError(f"not columns of the schema: {', '.join(unknown)}")
    return tuple(name for name in schema.names if name not in drop)


def flow_fields(*, without: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns of :data:`FLOW_SCHEMA` in schema order, less ``without`` (each must be one)."""
    return _fields(FLOW_SCHEMA, without)


def dns_fields(*, without: Iterable[str] = ()) -> tuple[str, ...]:
    """The columns of :data:`DNS_SCHEMA` in schema order, less ``without`` (each must be one)."""
    return _fields(DNS_SCHEMA, without)


#: Who talked to whom: what a feedback pattern matches on and the least a flow to score must say.
FLOW_ENDPOINT: tuple[str, ...] = ("src_ip", "dst_ip", "src_port", "dst_port", "proto")
#: A flow's volume counters (non-negative integers).
FLOW_COUNTERS: tuple[str, ...] = ("src_bytes", "dst_bytes", "src_pkts", "dst_pkts")
#: Ground truth, in both schemas: kept for evaluation only, never a feature.
LABEL_FIELDS: tuple[str, ...] = ("label", "detailed_label")
# The named groups are columns of the schemas (checked at import, so a rename cannot leave one behind).
flow_fields(without=(*FLOW_ENDPOINT, *FLOW_COUNTERS, *LABEL_FIELDS))
dns_fields(without=LABEL_FIELDS)


def is_malicious(labels: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a label marks an attack: Stratosphere's ``Malicious``, CTU-13's ``Botnet`` flows.

    Null and every other label (``Benign``, ``Background``, ``Normal``...) is False.
    """
    lower = pc.utf8_lower(labels)
    hit = pc.or_(pc.match_substring(lower, "malicious"), pc.match_substring(lower, "botnet"))
    return pc.fill_null(hit, False)
