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

>>> FLOW_SCHEMA.names[:5]
['line', 'flow_id', 'ts', 'src_ip', 'src_port']
>>> is_malicious(pa.array(["Malicious", "Benign", None, "flow=From-Botnet-V1"])).to_pylist()
[True, False, False, True]
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DNS_SCHEMA", "FLOW_SCHEMA", "FLOW_TIME", "is_malicious"]

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


def is_malicious(labels: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a label marks an attack: Stratosphere's ``Malicious``, CTU-13's ``Botnet`` flows.

    Null and every other label (``Benign``, ``Background``, ``Normal``...) is False.
    """
    lower = pc.utf8_lower(labels)
    hit = pc.or_(pc.match_substring(lower, "malicious"), pc.match_substring(lower, "botnet"))
    return pc.fill_null(hit, False)
