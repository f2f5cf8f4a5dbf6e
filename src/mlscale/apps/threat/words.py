"""Words and documents, as in Apache Spot: each flow or DNS query becomes words of its IPs' documents.

Flow words
----------
Every flow gives two words, one per side: the *source word* goes to the source
IP's document, the *destination word* to the destination IP's. A word is the
tuple of these tokens (each an integer; the word is their mixed-radix code):

``port``
    ``0`` when both ports are 0; ``111111`` when both are <= 1024; ``333333`` when
    both are > 1024; otherwise the low port (the service, 0..1024).
``side``
    for the low-port case, whether this side owns the low port (the server,
    written with Spot's ``-1_`` prefix) or the high port (the client); the same
    word for both sides otherwise.
``proto``
    ``tcp``, ``udp``, ``icmp``, ``icmp6``, ``igmp``, ``gre``, ``esp``, ``sctp``, or ``other``.
``hour``
    hour of day of the flow's start (0..23), in the log's own clock.
``bytes``, ``packets``
    ``ceil(log2(x + 1))`` of the flow's total bytes and packets (both directions), capped at 63.

The ``spot`` scheme is exactly those (``-1_443_tcp_14_12_4``). The ``mlscale``
scheme, the default, differs in two tokens, both measured on the labelled
captures (``docs/threat.md``):

``service`` (instead of ``port``)
    the lower of the two ports, whatever its value, unless it is dynamic
    (>= 49152: both sides ephemeral, token ``eph``); ``0`` when both are 0. Spot's
    ``333333`` folds every port above 1024 into one token, so a scan of random
    high ports or a RAT on port 5888 looks like ordinary traffic; keeping the
    registered ports (1025..49151) exposes them. The side owning the service
    port is the server (``-1_`` prefix), as in Spot.
``hour``
    dropped by default (``hour_bins=1``): most captures span hours, not days,
    and a 24-valued token multiplies the vocabulary for no gain there. Pass
    ``hour_bins`` (a divisor of 24) to bring it back for networks with daily rhythms.

Rendered: ``-1_5888_tcp_7_2``.

DNS words
---------
One word per query, in the client IP's document, from (Spot's fields):
top-domain class (``2`` the user's own domain, ``1`` a listed top domain,
``0`` other), ``ceil(log2(frame length + 1))`` (``-1`` when the log has none, as
Zeek's), ``ceil(log2(subdomain length + 1))``, subdomain entropy in half-bit
bins (0..12), the number of periods (capped at 15), the query type (capped at
255) and the response code (``-1`` unknown). The registered domain is the last
two labels, or three under a two-letter country code's ``co``/``com``/``ac``...
(no public-suffix list is shipped).

>>> import pyarrow as pa
>>> from mlscale.apps.threat.schema import FLOW_SCHEMA
>>> row = {"line": 1, "flow_id": None, "ts": 14 * 3600 * 10**6, "src_ip": "10.0.0.1", "src_port": 51000,
...        "dst_ip": "10.0.0.2", "dst_port": 443, "proto": "tcp", "service": None, "duration": 1.0,
...        "src_bytes": 1500, "dst_bytes": 3000, "src_pkts": 6, "dst_pkts": 8, "state": "SF",
...        "label": None, "detailed_label": None}
>>> flows = pa.Table.from_pylist([row], schema=FLOW_SCHEMA)
>>> w = flow_words(flows, "spot")
>>> describe_flow_words(w.src, "spot"), describe_flow_words(w.dst, "spot")
(['443_tcp_14_13_4'], ['-1_443_tcp_14_13_4'])
>>> describe_flow_words(flow_words(flows).dst, "mlscale")
['-1_443_tcp_13_4']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.errors import ValidationError

__all__ = [
    "PROTOCOLS",
    "SCHEMES",
    "FlowWords",
    "Scheme",
    "WordScheme",
    "describe_dns_words",
    "describe_flow_words",
    "dns_words",
    "flow_words",
    "get_scheme",
]

Scheme = Literal["spot", "mlscale"]
SCHEMES: tuple[str, ...] = ("spot", "mlscale")
PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "icmp", "icmp6", "igmp", "gre", "esp", "sctp", "other")
_PROTO_ALIASES = {"ipv6-icmp": "icmp6", "icmpv6": "icmp6", "ipv6icmp": "icmp6", "udt": "udp", "rtp": "udp"}
_PORT_ZERO, _PORT_LOW, _PORT_HIGH, _PORT_BASE = 0, 1, 2, 3
_SERVICE_ZERO, _SERVICE_EPHEMERAL, _SERVICE_BASE = 0, 1, 2
#: Ports from here up are dynamic (IANA): never a service, always the client's.
_EPHEMERAL = 49152
_SIDE_SAME, _SIDE_SERVER, _SIDE_CLIENT = 0, 1, 2
_MAX_BIN = 63
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class WordScheme:
    """Which tokens make a flow word; ``fields`` are encoded in order, each with its radix."""

    name: str
    fields: tuple[str, ...]
    hour_bins: int = 24

    def radix(self, field: str) -> int:
        return {
            "port": _PORT_BASE + 1025,
            "service": _SERVICE_BASE + _EPHEMERAL,
            "side": 3,
            "proto": len(PROTOCOLS),
            "hour": self.hour_bins,
            "bytes": _MAX_BIN + 1,
            "packets": _MAX_BIN + 1,
        }[field]


_SCHEMES = {
    "spot": WordScheme("spot", ("port", "side", "proto", "hour", "bytes", "packets")),
    "mlscale": WordScheme("mlscale", ("service", "side", "proto", "hour", "bytes", "packets"), 1),
}


def get_scheme(name: str, hour_bins: int | None = None) -> WordScheme:
    """The word scheme called ``name`` (``spot`` or ``mlscale``), optionally with other hour bins."""
    if name not in _SCHEMES:
        raise ValidationError(f"expected one of {', '.join(SCHEMES)}, got {name!r}", field="words")
    scheme = _SCHEMES[name]
    if hour_bins is not None:
        if hour_bins not in (1, 2, 3, 4, 6, 8, 12, 24):
            raise ValidationError(f"expected a divisor of 24, got {hour_bins}", field="hour_bins")
        scheme = WordScheme(scheme.name, scheme.fields, hour_bins)
    return scheme


@dataclass(frozen=True, slots=True)
class FlowWords:
    """The word codes of a batch of flows: ``src[i]`` for flow i's source IP, ``dst[i]`` for its destination."""

    src: I64
    dst: I64


def _column(table: pa.RecordBatch | pa.Table, name: str) -> pa.Array | pa.ChunkedArray:
    i = table.schema.get_field_index(name)
    if i < 0:
        raise ValidationError(f"the flows lack the column {name!r}", field="flows")
    return table.column(i)


def _np_int(values: pa.Array | pa.ChunkedArray) -> I64:
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def log2_bin(values: I64) -> I64:
    """``ceil(log2(x + 1))`` for whole numbers x >= 0 (exact: the bit length), capped at 63.

    >>> log2_bin(np.array([0, 1, 2, 3, 4, 1023, 1024])).tolist()
    [0, 1, 2, 2, 3, 10, 11]
    """
    clipped = np.clip(values, 0, 2**52)
    _, exponent = np.frexp(clipped.astype(np.float64))
    return np.minimum(exponent.astype(np.int64), _MAX_BIN)


def protocol_codes(proto: pa.Array | pa.ChunkedArray) -> I64:
    """Index of each protocol name in :data:`PROTOCOLS` (unknown names: ``other``)."""
    names = pc.utf8_lower(pc.fill_null(proto, ""))
    lookup = pa.array(list(PROTOCOLS[:-1]) + list(_PROTO_ALIASES))
    targets = np.array(
        list(range(len(PROTOCOLS) - 1)) + [PROTOCOLS.index(v) for v in _PROTO_ALIASES.values()],
        dtype=np.int64,
    )
    idx = pc.index_in(names, value_set=lookup)
    found = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(found >= 0, targets[np.maximum(found, 0)], len(PROTOCOLS) - 1)


def _hours(ts: pa.Array | pa.ChunkedArray, bins: int) -> I64:
    if bins == 1:
        return np.zeros(len(ts), dtype=np.int64)
    micros = np.asarray(pc.fill_null(ts.cast(pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    hour = (micros // 3_600_000_000) % 24
    return hour // (24 // bins)


def _spot_port(sp: I64, dp: I64) -> tuple[I64, I64, I64]:
    """Spot's port token and each side's role (server owns the low port)."""
    src_low, dst_low = sp <= 1024, dp <= 1024
    port = np.where(
        (sp == 0) & (dp == 0),
        _PORT_ZERO,
        np.where(
            src_low & dst_low,
            _PORT_LOW,
            np.where(~src_low & ~dst_low, _PORT_HIGH, _PORT_BASE + np.where(src_low, sp, dp)),
        ),
    )
    one_low = src_low ^ dst_low
    side_src = np.where(one_low, np.where(src_low, _SIDE_SERVER, _SIDE_CLIENT), _SIDE_SAME)
    side_dst = np.where(one_low, np.where(dst_low, _SIDE_SERVER, _SIDE_CLIENT), _SIDE_SAME)
    return port, side_src, side_dst


def _service_port(sp: I64, dp: I64) -> tuple[I64, I64, I64]:
    """The service token (lower port unless dynamic) and each side's role."""
    svc = np.minimum(sp, dp)
    token = np.where(
        (sp == 0) & (dp == 0),
        _SERVICE_ZERO,
        np.where(svc >= _EPHEMERAL, _SERVICE_EPHEMERAL, _SERVICE_BASE + svc),
    )
    same = (sp == dp) | (token < _SERVICE_BASE)
    side_src = np.where(same, _SIDE_SAME, np.where(sp < dp, _SIDE_SERVER, _SIDE_CLIENT))
    side_dst = np.where(same, _SIDE_SAME, np.where(dp < sp, _SIDE_SERVER, _SIDE_CLIENT))
    return token, side_src, side_dst


def flow_words(table: pa.RecordBatch | pa.Table, scheme: str | WordScheme = "mlscale") -> FlowWords:
    """The source and destination word codes of every flow (vectorised, no Python loop over flows)."""
    sch = scheme if isinstance(scheme, WordScheme) else get_scheme(scheme)
    sp = _np_int(_column(table, "src_port"))
    dp = _np_int(_column(table, "dst_port"))
    port_field = "service" if "service" in sch.fields else "port"
    port, side_src, side_dst = (_service_port if port_field == "service" else _spot_port)(sp, dp)
    shared: dict[str, I64] = {port_field: port}
    if "proto" in sch.fields:
        shared["proto"] = protocol_codes(_column(table, "proto"))
    if "hour" in sch.fields:
        shared["hour"] = _hours(_column(table, "ts"), sch.hour_bins)
    if "bytes" in sch.fields:
        shared["bytes"] = log2_bin(_np_int(_column(table, "src_bytes")) + _np_int(_column(table, "dst_bytes")))
    if "packets" in sch.fields:
        shared["packets"] = log2_bin(_np_int(_column(table, "src_pkts")) + _np_int(_column(table, "dst_pkts")))
    # Encode everything but the side once; the two sides differ only in that token.
    n = len(sp)
    base = np.zeros(n, dtype=np.int64)
    after_side = 1
    for field in sch.fields:
        if field == "side":
            after_side = 1
            base = base * sch.radix("side")
            continue
        after_side *= sch.radix(field)
        base = base * sch.radix(field) + shared[field]
    return FlowWords(src=base + side_src * after_side, dst=base + side_dst * after_side)


def _decode(codes: Sequence[int] | I64, radices: Sequence[int]) -> I64:
    rest = np.asarray(codes, dtype=np.int64).copy()
    out = np.zeros((rest.size, len(radices)), dtype=np.int64)
    for j in range(len(radices) - 1, -1, -1):
        out[:, j] = rest % radices[j]
        rest //= radices[j]
    return out


def describe_flow_words(codes: Sequence[int] | I64, scheme: str | WordScheme = "mlscale") -> list[str]:
    """The readable form of flow word codes (``-1_443_tcp_14_12_4``; see the module docstring)."""
    sch = scheme if isinstance(scheme, WordScheme) else get_scheme(scheme)
    parts = _decode(codes, [sch.radix(f) for f in sch.fields])
    out: list[str] = []
    for row in parts.tolist():
        tok = dict(zip(sch.fields, row, strict=True))
        p = tok.get("port", 0)
        port = "0" if p == _PORT_ZERO else "111111" if p == _PORT_LOW else "333333" if p == _PORT_HIGH else str(p - 3)
        v = tok.get("service", 0)
        service = "0" if v == _SERVICE_ZERO else "eph" if v == _SERVICE_EPHEMERAL else str(v - _SERVICE_BASE)
        words: list[str] = []
        for field in sch.fields:
            if field == "port":
                words.append(port)
            elif field == "service":
                words.append(service)
            elif field == "proto":
                words.append(PROTOCOLS[tok["proto"]])
            elif field == "hour":
                if sch.hour_bins > 1:
                    words.append(str(tok["hour"] * (24 // sch.hour_bins)))
            elif field != "side":
                words.append(str(tok[field]))
        text = "_".join(words)
        out.append(("-1_" + text) if tok["side"] == _SIDE_SERVER else text)
    return out


# -- DNS -----------------------------------------------------------------------------------------

_DNS_RADICES = (3, 65, 64, 13, 16, 256, 17)
_DNS_FIELDS = ("top", "frame", "sublen", "entropy", "periods", "qtype", "rcode")
_SLD = r"(?:co|com|net|org|gov|edu|ac|or|ne|go|gob|mil|nic)"


def _registered(query: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    three = pc.extract_regex(query, rf"(?P<d>[^.]+\.{_SLD}\.[a-z]{{2}})$")
    two = pc.extract_regex(query, r"(?P<d>[^.]+\.[^.]+)$")
    reg = pc.coalesce(pc.struct_field(three, [0]), pc.struct_field(two, [0]), query)
    return reg


def char_entropy(strings: pa.Array | pa.ChunkedArray, chunk: int = 65_536) -> npt.NDArray[np.float64]:
    """Shannon entropy (bits per character, over bytes) of each string, vectorised.

    >>> char_entropy(pa.array(["aaaa", "abab", "abcd", ""])).round(3).tolist()
    [0.0, 1.0, 2.0, 0.0]
    """
    arr = pa.chunked_array([strings]) if isinstance(strings, pa.Array) else strings
    out = []
    for part in arr.chunks:
        part = pc.fill_null(part, "").cast(pa.large_string())
        offsets = np.frombuffer(part.buffers()[1], dtype=np.int64)[part.offset : part.offset + len(part) + 1]
        data = (
            np.frombuffer(part.buffers()[2], dtype=np.uint8) if part.buffers()[2] is not None else np.zeros(0, np.uint8)
        )
        for s in range(0, len(part), chunk):
            e = min(s + chunk, len(part))
            lo, hi = int(offsets[s]), int(offsets[e])
            lengths = np.diff(offsets[s : e + 1])
            owner = np.repeat(np.arange(e - s), lengths)
            counts = np.bincount(owner * 256 + data[lo:hi], minlength=(e - s) * 256).reshape(e - s, 256)
            total = np.maximum(lengths, 1).astype(np.float64)[:, None]
            p = counts / total
            with np.errstate(divide="ignore", invalid="ignore"):
                ent = -np.where(counts > 0, p * np.log2(np.where(counts > 0, p, 1.0)), 0.0).sum(axis=1)
            out.append(ent + 0.0)
    return np.concatenate(out) if out else np.zeros(0)


def dns_words(
    table: pa.RecordBatch | pa.Table,
    *,
    top_domains: Iterable[str] = (),
    user_domains: Iterable[str] = (),
) -> I64:
    """The word code of every DNS record (for its ``client_ip``'s document)."""
    query = pc.fill_null(_column(table, "query"), "")
    reg = _registered(query)
    top = np.zeros(len(query), dtype=np.int64)
    tops = pa.array(sorted({d.lower().rstrip(".") for d in top_domains}), pa.string())
    users = pa.array(sorted({d.lower().rstrip(".") for d in user_domains}), pa.string())
    if len(tops):
        top = np.where(np.asarray(pc.is_in(reg, value_set=tops).to_numpy(zero_copy_only=False)), 1, top)
    if len(users):
        top = np.where(np.asarray(pc.is_in(reg, value_set=users).to_numpy(zero_copy_only=False)), 2, top)
    qlen = _np_int(pc.utf8_length(query))
    rlen = _np_int(pc.utf8_length(reg))
    sub_len = np.maximum(qlen - rlen - 1, 0)
    sub = pc.replace_substring_regex(query, r"\.?[^.]+\.[^.]+$", "")
    entropy = np.minimum((char_entropy(sub) * 2).astype(np.int64), 12)
    periods = np.minimum(_np_int(pc.count_substring(query, ".")), 15)
    frame = _np_int(_column(table, "frame_len"))
    frame_bin = np.where(frame < 0, 64, np.minimum(log2_bin(frame), 63))
    qtype = np.clip(_np_int(_column(table, "qtype")), 0, 255)
    rcode = _np_int(_column(table, "rcode"))
    rcode_tok = np.where((rcode < 0) | (rcode > 15), 16, rcode)
    tokens = (top, frame_bin, np.minimum(log2_bin(sub_len), 63), entropy, periods, qtype, rcode_tok)
    code = np.zeros(len(query), dtype=np.int64)
    for radix, tok in zip(_DNS_RADICES, tokens, strict=True):
        code = code * radix + tok
    return code


def describe_dns_words(codes: Sequence[int] | I64) -> list[str]:
    """Readable DNS words: ``top_frame_sublen_entropy_periods_qtype_rcode`` (``-1`` = unknown)."""
    parts = _decode(codes, _DNS_RADICES)
    out = []
    for row in parts.tolist():
        tok = dict(zip(_DNS_FIELDS, row, strict=True))
        frame = "-1" if tok["frame"] == 64 else str(tok["frame"])
        rcode = "-1" if tok["rcode"] == 16 else str(tok["rcode"])
        out.append(f"{tok['top']}_{frame}_{tok['sublen']}_{tok['entropy']}_{tok['periods']}_{tok['qtype']}_{rcode}")
    return out
