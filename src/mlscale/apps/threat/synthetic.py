"""Synthetic network flows at any scale: hosts with daily rhythms and services, plus injected attacks.

The network: ``hosts`` internal clients (``10.x.y.z``) and a set of servers
(internal and external) offering services (HTTPS, HTTP, DNS, NTP, SMTP, SSH,
IMAPS, RDP, an MQTT broker, a web proxy). Each client has a role that sets
its daily rhythm (office workstations peak at 9-17h, servers and IoT devices
are flat, night jobs run at 1-4h), a few preferred services (Zipf-weighted)
and its own activity level. Benign flows draw a client by activity, an hour
from its rhythm, a service from its preferences and bytes/packets from the
service's log-normal size around the client's own habit for it (label ``Benign``).

Attacks, a fraction ``attack_rate`` of all flows, labelled ``Malicious`` with
the kind in ``detailed_label``:

``port-scan``
    external scanners probe random ports of internal hosts: one or two SYN
    packets, no answer (state ``S0``);
``beaconing``
    a few infected clients call a command-and-control server every minute, on
    a registered port, with small fixed-size messages, day and night;
``exfiltration``
    a few clients upload hundreds of MB over HTTPS to an address nobody else
    talks to, at night.

Generation is vectorised and streamed (:func:`iter_flows`): memory is one
batch, whatever the total, and the same seed gives the same flows for any
batch size.

>>> t = generate_flows(10_000, hosts=50, seed=1)
>>> t.num_rows, t.schema.names[3], sorted(set(t.column("detailed_label").to_pylist()) - {None})
(10000, 'src_ip', ['beaconing', 'exfiltration', 'port-scan'])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.threat.schema import FLOW_SCHEMA
from mlscale.errors import ValidationError

__all__ = ["SERVICES", "generate_flows", "iter_flows"]

_DAY_US = 86_400 * 10**6
_START_US = 1_700_006_400 * 10**6  # 2023-11-15 00:00 UTC

#: (name, port, proto, log-mean bytes, log-sd, bytes per packet)
SERVICES: tuple[tuple[str, int, str, float, float, float], ...] = (
    ("https", 443, "tcp", 9.5, 1.6, 900.0),
    ("http", 80, "tcp", 8.8, 1.5, 800.0),
    ("dns", 53, "udp", 5.0, 0.4, 90.0),
    ("ntp", 123, "udp", 5.2, 0.1, 90.0),
    ("smtp", 25, "tcp", 9.0, 1.2, 700.0),
    ("ssh", 22, "tcp", 8.0, 1.8, 300.0),
    ("imaps", 993, "tcp", 8.5, 1.2, 600.0),
    ("rdp", 3389, "tcp", 10.5, 1.3, 700.0),
    ("mqtt", 8883, "tcp", 6.5, 0.8, 200.0),
    ("proxy", 8080, "tcp", 9.3, 1.5, 900.0),
)
# Hour-of-day weights of each client role (office, always-on, night jobs).
_HOURS = np.arange(24)
_RHYTHMS = np.stack(
    [
        0.05 + np.exp(-0.5 * ((_HOURS - 13) / 3.0) ** 2),
        np.ones(24),
        0.02 + np.exp(-0.5 * ((_HOURS - 2.5) / 1.0) ** 2),
    ]
)
_RHYTHMS = _RHYTHMS / _RHYTHMS.sum(axis=1, keepdims=True)
_ROLE_SHARES = np.array([0.7, 0.2, 0.1])
_ATTACK_SHARES = np.array([0.6, 0.3, 0.1])  # scan, beaconing, exfiltration


@dataclass(frozen=True)
class _Network:
    client_ips: pa.Array
    client_role: npt.NDArray[np.int64]
    client_activity: npt.NDArray[np.float64]
    client_services: npt.NDArray[np.int64]  # hosts x 3 preferred service indices
    client_size: npt.NDArray[np.float64]  # hosts x 3: each habit's own log-size offset
    server_ips: pa.Array  # servers x ...
    server_of_service: list[npt.NDArray[np.int64]]
    scanner_ips: pa.Array
    c2_ips: pa.Array
    drop_ips: pa.Array
    infected: npt.NDArray[np.int64]
    exfiltrators: npt.NDArray[np.int64]


def _ips(prefix: tuple[int, int], count: int, rng: np.random.Generator) -> pa.Array:
    host = rng.choice(256 * 254, size=count, replace=False)
    third, fourth = host // 254, host % 254 + 1
    texts = [f"{prefix[0]}.{prefix[1]}.{a}.{b}" for a, b in zip(third.tolist(), fourth.tolist(), strict=True)]
    return pa.array(texts, pa.string())


def _network(hosts: int, seed: int) -> _Network:
    rng = np.random.default_rng([seed, 0])
    n_srv = len(SERVICES)
    clients = _ips((10, int(rng.integers(0, 255))), hosts, rng)
    role = rng.choice(3, size=hosts, p=_ROLE_SHARES)
    activity = rng.lognormal(0.0, 1.0, size=hosts)
    popularity = 1.0 / np.arange(1, n_srv + 1)
    prefs = np.stack([rng.choice(n_srv, size=3, replace=False, p=popularity / popularity.sum()) for _ in range(hosts)])
    servers_per = [max(2, hosts // 50) if s[0] in ("https", "http") else 2 for s in SERVICES]
    server_ips = _ips((int(rng.integers(11, 200)), int(rng.integers(0, 255))), sum(servers_per), rng)
    bounds = np.cumsum([0, *servers_per])
    server_of = [np.arange(bounds[i], bounds[i + 1]) for i in range(n_srv)]
    n_bad = max(1, hosts // 200)
    return _Network(
        client_ips=clients,
        client_role=role,
        client_activity=activity / activity.sum(),
        client_services=prefs,
        client_size=rng.normal(0.0, 1.0, size=(hosts, 3)),
        server_ips=server_ips,
        server_of_service=server_of,
        scanner_ips=_ips((203, 0), 20, rng),
        c2_ips=_ips((198, 51), 3, rng),
        drop_ips=_ips((192, 0), 2, rng),
        infected=rng.choice(hosts, size=n_bad, replace=False),
        exfiltrators=rng.choice(hosts, size=n_bad, replace=False),
    )


def _batch(net: _Network, n: int, first: int, days: int, attack_rate: float, seed: int) -> pa.RecordBatch:
    rng = np.random.default_rng([seed, 1, first])
    n_srv = len(SERVICES)
    kind = np.where(rng.random(n) < attack_rate, 1 + rng.choice(3, size=n, p=_ATTACK_SHARES), 0)
    client = rng.choice(net.client_activity.size, size=n, p=net.client_activity)
    role = net.client_role[client]
    # Hour from the client's rhythm: inverse CDF per role.
    cdf = np.cumsum(_RHYTHMS, axis=1)
    hour = np.minimum((rng.random(n)[:, None] > cdf[role]).sum(axis=1), 23)
    day = rng.integers(0, days, size=n)
    ts = _START_US + day * _DAY_US + hour * 3_600 * 10**6 + rng.integers(0, 3_600 * 10**6, size=n)
    pref_pick = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    svc = net.client_services[client, pref_pick]
    ports = np.array([s[1] for s in SERVICES])
    means = np.array([s[3] for s in SERVICES])
    sds = np.array([s[4] for s in SERVICES])
    per_pkt = np.array([s[5] for s in SERVICES])
    server_idx = np.zeros(n, np.int64)
    for i in range(n_srv):
        hit = svc == i
        if hit.any():
            pool = net.server_of_service[i]
            server_idx[hit] = pool[rng.integers(0, pool.size, size=int(hit.sum()))]
    # A client's habit (say, its mail sync) has its own typical size; flows vary around it.
    log_size = means[svc] + sds[svc] * net.client_size[client, pref_pick]
    total = np.maximum(rng.lognormal(log_size, 0.4 * sds[svc]), 60).astype(np.int64)
    up_share = rng.uniform(0.1, 0.4, size=n)
    src_bytes = np.maximum((total * up_share).astype(np.int64), 40)
    dst_bytes = np.maximum(total - src_bytes, 40)
    src_pkts = np.maximum(np.ceil(src_bytes / per_pkt[svc]), 1).astype(np.int64)
    dst_pkts = np.maximum(np.ceil(dst_bytes / per_pkt[svc]), 1).astype(np.int64)
    src_port = rng.integers(49152, 65536, size=n)
    dst_port = ports[svc]
    proto_idx = np.array([0 if s[2] == "tcp" else 1 for s in SERVICES])[svc]
    state = np.zeros(n, np.int64)  # SF
    duration = np.round(rng.exponential(2.0, size=n), 6)
    src_ip = net.client_ips.take(pa.array(client))
    dst_ip = net.server_ips.take(pa.array(server_idx))

    scan = kind == 1
    if scan.any():
        k = int(scan.sum())
        src_ip = _replace(src_ip, scan, net.scanner_ips.take(pa.array(rng.integers(0, len(net.scanner_ips), k))))
        dst_ip = _replace(dst_ip, scan, net.client_ips.take(pa.array(rng.integers(0, len(net.client_ips), k))))
        dst_port[scan] = rng.integers(1, 65536, size=k)
        src_port[scan] = rng.integers(1025, 65536, size=k)
        src_pkts[scan] = rng.integers(1, 3, size=k)
        dst_pkts[scan] = 0
        src_bytes[scan] = 40 * src_pkts[scan]
        dst_bytes[scan] = 0
        proto_idx[scan] = 0
        state[scan] = 1  # S0
        duration[scan] = 0.0
    beacon = kind == 2
    if beacon.any():
        k = int(beacon.sum())
        host = net.infected[rng.integers(0, net.infected.size, size=k)]
        src_ip = _replace(src_ip, beacon, net.client_ips.take(pa.array(host)))
        dst_ip = _replace(dst_ip, beacon, net.c2_ips.take(pa.array(host % len(net.c2_ips))))
        dst_port[beacon] = 4444 + 1000 * (host % 3)
        src_bytes[beacon] = 320
        dst_bytes[beacon] = 180
        src_pkts[beacon] = 4
        dst_pkts[beacon] = 3
        proto_idx[beacon] = 0
        # Every minute on the minute, day and night.
        ts[beacon] = _START_US + rng.integers(0, days * 1440, size=k) * 60 * 10**6
    exfil = kind == 3
    if exfil.any():
        k = int(exfil.sum())
        host = net.exfiltrators[rng.integers(0, net.exfiltrators.size, size=k)]
        src_ip = _replace(src_ip, exfil, net.client_ips.take(pa.array(host)))
        dst_ip = _replace(dst_ip, exfil, net.drop_ips.take(pa.array(host % len(net.drop_ips))))
        dst_port[exfil] = 443
        src_bytes[exfil] = rng.integers(100 << 20, 1 << 30, size=k)
        dst_bytes[exfil] = rng.integers(20_000, 60_000, size=k)
        src_pkts[exfil] = src_bytes[exfil] // 1400
        dst_pkts[exfil] = dst_bytes[exfil] // 600
        proto_idx[exfil] = 0
        ts[exfil] = _START_US + rng.integers(0, days, size=k) * _DAY_US + rng.integers(1, 4, size=k) * 3_600 * 10**6
        duration[exfil] = rng.uniform(300, 3000, size=k).round(3)
    labels = pa.array(["Benign", "Malicious"]).take(pa.array((kind > 0).astype(np.int64)))
    detailed = pa.array([None, "port-scan", "beaconing", "exfiltration"], pa.string()).take(pa.array(kind))
    arrays = [
        pa.array(np.arange(first, first + n, dtype=np.int64) + 1),
        pa.nulls(n, pa.string()),
        pa.array(ts, pa.int64()).cast(FLOW_SCHEMA.field("ts").type),
        src_ip,
        pa.array(src_port.astype(np.int32)),
        dst_ip,
        pa.array(dst_port.astype(np.int32)),
        pa.array(["tcp", "udp"]).take(pa.array(proto_idx)),
        pa.nulls(n, pa.string()),
        pa.array(duration),
        pa.array(src_bytes),
        pa.array(dst_bytes),
        pa.array(src_pkts),
        pa.array(dst_pkts),
        pa.array(["SF", "S0"]).take(pa.array(state)),
        labels,
        detailed,
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=FLOW_SCHEMA)


def _replace(values: pa.Array, mask: npt.NDArray[np.bool_], new: pa.Array) -> pa.Array:
    """``values`` with the masked positions taken, in order, from ``new``."""
    idx = np.arange(len(values), dtype=np.int64)
    idx[mask] = len(values) + np.arange(int(mask.sum()))
    return pa.concat_arrays([values, new]).take(pa.array(idx))


def iter_flows(
    rows: int,
    *,
    hosts: int = 1000,
    days: int = 7,
    attack_rate: float = 0.001,
    seed: int = 0,
    batch_rows: int = 1 << 20,
) -> Iterator[pa.RecordBatch]:
    """Stream ``rows`` synthetic flows (flow schema) in batches of ``batch_rows``."""
    given = {"rows": rows, "hosts": hosts, "days": days, "attack_rate": attack_rate, "batch_rows": batch_rows}
    checks: list[tuple[str, bool, str]] = [
        ("rows", isinstance(rows, int) and rows >= 1, "an integer >= 1"),
        ("hosts", isinstance(hosts, int) and 2 <= hosts <= 60_000, "an integer in 2..60000"),
        ("days", isinstance(days, int) and days >= 1, "an integer >= 1"),
        ("attack_rate", 0.0 <= attack_rate < 1.0, "a number in [0, 1)"),
        ("batch_rows", isinstance(batch_rows, int) and batch_rows >= 1, "an integer >= 1"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ValidationError(f"expected {expected}, got {given[name]!r}", field=name)
    net = _network(hosts, seed)
    # Batches are cut on a fixed grid so that the flows do not depend on batch_rows.
    grid = 1 << 16
    done = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    while done < rows:
        n = min(grid, rows - done)
        pending.append(_batch(net, n, done, days, attack_rate, seed))
        pending_rows += n
        done += n
        if pending_rows >= batch_rows or done == rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield from table.to_batches(max_chunksize=max(batch_rows, pending_rows))
            pending, pending_rows = [], 0


def generate_flows(
    rows: int, *, hosts: int = 1000, days: int = 7, attack_rate: float = 0.01, seed: int = 0
) -> pa.Table:
    """``rows`` synthetic flows as one table (small sizes; stream large ones with :func:`iter_flows`)."""
    return pa.Table.from_batches(
        list(iter_flows(rows, hosts=hosts, days=days, attack_rate=attack_rate, seed=seed)),
        schema=FLOW_SCHEMA,
    )
