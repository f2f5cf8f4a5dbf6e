"""The word schemes: Spot's exactly, mlscale's service-port words, DNS words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.threat import DNS_SCHEMA, FLOW_SCHEMA, dns_words, flow_words
from mlscale.apps.threat.words import (
    char_entropy,
    describe_dns_words,
    describe_flow_words,
    get_scheme,
    log2_bin,
    protocol_codes,
)
from mlscale.errors import ValidationError

HOUR_US = 3600 * 10**6


def _flows(*rows: dict[str, Any]) -> pa.Table:
    base = {
        "line": 1,
        "flow_id": None,
        "ts": 0,
        "src_ip": "10.0.0.1",
        "src_port": 50000,
        "dst_ip": "10.0.0.2",
        "dst_port": 443,
        "proto": "tcp",
        "service": None,
        "duration": 0.0,
        "src_bytes": 0,
        "dst_bytes": 0,
        "src_pkts": 0,
        "dst_pkts": 0,
        "state": None,
        "label": None,
        "detailed_label": None,
    }
    return pa.Table.from_pylist([{**base, **r} for r in rows], schema=FLOW_SCHEMA)


def _spot(table: pa.Table) -> tuple[list[str], list[str]]:
    w = flow_words(table, "spot")
    return describe_flow_words(w.src, "spot"), describe_flow_words(w.dst, "spot")


def test_spot_port_tokens_and_roles() -> None:
    t = _flows(
        {"src_port": 0, "dst_port": 0, "proto": "icmp", "ts": 3 * HOUR_US},
        {"src_port": 53, "dst_port": 123, "proto": "udp"},
        {"src_port": 40000, "dst_port": 5060},
        {"src_port": 51000, "dst_port": 443, "src_bytes": 100, "dst_bytes": 400, "src_pkts": 2, "dst_pkts": 3},
        {"src_port": 22, "dst_port": 60000, "ts": 23 * HOUR_US + 5},
    )
    src, dst = _spot(t)
    assert src[:3] == ["0_icmp_3_0_0", "111111_udp_0_0_0", "333333_tcp_0_0_0"]
    assert dst[:3] == src[:3]  # no low port on one side only: both sides get the same word
    # bytes 500 -> ceil(log2(501)) = 9; packets 5 -> 3; the server side carries Spot's -1_ prefix
    assert (src[3], dst[3]) == ("443_tcp_0_9_3", "-1_443_tcp_0_9_3")
    assert (src[4], dst[4]) == ("-1_22_tcp_23_0_0", "22_tcp_23_0_0")


def test_mlscale_words_keep_registered_service_ports() -> None:
    t = _flows(
        {"src_port": 40000, "dst_port": 5060},
        {"src_port": 50000, "dst_port": 60000},
        {"src_port": 50000, "dst_port": 443, "ts": 14 * HOUR_US},
        {"src_port": 137, "dst_port": 137, "proto": "udp"},
    )
    w = flow_words(t)
    src, dst = describe_flow_words(w.src), describe_flow_words(w.dst)
    assert (src[0], dst[0]) == ("5060_tcp_0_0", "-1_5060_tcp_0_0")  # Spot folds this into 333333
    assert (src[1], dst[1]) == ("eph_tcp_0_0", "eph_tcp_0_0")
    assert dst[2] == "-1_443_tcp_0_0"  # no hour token by default
    assert src[3] == dst[3] == "137_udp_0_0"
    hourly = flow_words(t, get_scheme("mlscale", hour_bins=24))
    assert describe_flow_words(hourly.dst, get_scheme("mlscale", 24))[2] == "-1_443_tcp_14_0_0"


def test_codes_are_distinct_per_token_and_deterministic() -> None:
    t = _flows(*({"dst_port": p, "src_bytes": b} for p in (80, 443, 8080) for b in (0, 100, 10**6)))
    w1, w2 = flow_words(t), flow_words(t)
    assert np.array_equal(w1.src, w2.src)
    assert np.unique(w1.src).size == 9
    assert np.unique(np.concatenate([w1.src, w1.dst])).size == 18  # client and server words differ


def test_log2_bins_and_protocols() -> None:
    assert log2_bin(np.array([0, 1, 2, 3, 4, 7, 8, 2**40])).tolist() == [0, 1, 2, 2, 3, 3, 4, 41]
    assert log2_bin(np.array([2**62])).tolist() == [53]  # capped where float64 stays exact
    codes = protocol_codes(pa.array(["TCP", "udp", "ipv6-icmp", "weird", None]))
    assert codes.tolist() == [0, 1, 3, 8, 8]


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="words"):
        get_scheme("bag-of-bytes")
    with pytest.raises(ValidationError, match="hour_bins"):
        get_scheme("spot", hour_bins=5)


def test_dns_words() -> None:
    rows = [
        {"query": "www.google.com", "qtype": 1, "rcode": 0, "frame_len": 90},
        {"query": "x7kq9z2mw1ab.evil.net", "qtype": 16, "rcode": 3, "frame_len": -1},
        {"query": "mail.ueab.ac.ke", "qtype": 15, "rcode": 0, "frame_len": 120},
        {"query": "printer.corp.example", "qtype": 1, "rcode": 0, "frame_len": 70},
    ]
    base = {
        "line": 1,
        "flow_id": None,
        "ts": 0,
        "client_ip": "10.0.0.1",
        "server_ip": "8.8.8.8",
        "label": None,
        "detailed_label": None,
    }
    table = pa.Table.from_pylist([{**base, **r} for r in rows], schema=DNS_SCHEMA)
    words = describe_dns_words(dns_words(table, top_domains=["google.com"], user_domains=["corp.example"]))
    # top class, frame bin, subdomain length bin, entropy bin, periods, qtype, rcode
    assert words[0] == "1_7_2_0_2_1_0"  # frame 90 -> 7; "www": length 3 -> 2, entropy 0
    assert words[1].startswith("0_-1_4_7_2_16_3")  # 12 random characters: 3.6 bits -> bin 7
    assert words[2].split("_")[:3] == ["0", "7", "3"]  # "mail" under ueab.ac.ke (a country SLD)
    assert words[3].startswith("2_")  # the user's own domain


def test_char_entropy_matches_a_direct_computation() -> None:
    texts = ["", "a", "abab", "hello world", "x7kq9z2mw1ab"]
    expected = []
    for t in texts:
        if not t:
            expected.append(0.0)
            continue
        _, counts = np.unique(list(t), return_counts=True)
        p = counts / counts.sum()
        expected.append(float(-(p * np.log2(p)).sum()))
    assert np.allclose(char_entropy(pa.array(texts)), expected)
