"""The console's JSON API through the serving stack (ASGI adapter, real registry, real Parquet run)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mlscale.apps.threat import ThreatDetector, publish_model, rank_records
from mlscale.apps.threat.synthetic import generate_flows
from mlscale.console import mount
from mlscale.console.hunt import INDEX_ROWS, ScoredRun, parse_filters
from mlscale.console.serving import parse_prometheus, summarize
from mlscale.errors import ValidationError
from mlscale.registry import open_store
from mlscale.serve import ServingApp
from mlscale.serve._app import ServeMetrics
from mlscale.serve._metrics import Metrics


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("console-api")
    flows = generate_flows(4000, hosts=25, days=1, seed=0)
    data = root / "flows.parquet"
    pq.write_table(flows, data)
    det = ThreatDetector(topics=4, passes=2).fit(flows.to_batches(1000))
    store = open_store(root / "registry")
    for _ in range(2):
        publish_model(
            store, "t", det, metrics={"auc": 0.9}, engine="local", data_fingerprint="x", extra={"data": str(data)}
        )
    runs = root / "runs"
    runs.mkdir()
    ranked = rank_records(det, flows.to_batches(1000))
    pq.write_table(ranked, runs / "day.parquet", row_group_size=700)  # small groups: several per page walk
    ranked.slice(0, 30).to_pandas().to_csv(runs / "small.csv", index=False)
    reports = root / "reports" / "r1"
    reports.mkdir(parents=True)
    steps = [
        {"offered_rps": 100, "latency_ms": {"p50": 1.0, "p99": 3.0}},
        {"offered_rps": 50, "latency_ms": {"p99": 2}},
    ]
    (reports / "report.json").write_text(json.dumps({"mode": "knee", "steps": steps, "generated_at": "2026"}))
    (reports / "report.html").write_text("<h1>r1</h1>")
    return {"root": root, "registry": root / "registry", "runs": runs, "reports": root / "reports"}


@pytest.fixture(scope="module")
def app(world: dict[str, Path]) -> ServingApp:
    console = mount({"registry": str(world["registry"]), "runs": str(world["runs"]), "reports": str(world["reports"])})
    return ServingApp({}, metrics=ServeMetrics(Metrics(None, worker=str(os.getpid()))), mounts=[console])


def call(app: ServingApp, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async def go() -> tuple[int, bytes, bytes]:
        sent: list[dict[str, Any]] = []
        raw = b"" if body is None else json.dumps(body).encode()
        messages = [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        p, _, qs = path.partition("?")
        await app(
            {"type": "http", "method": method, "path": p, "query_string": qs.encode(), "headers": []}, receive, send
        )
        ctype = dict(sent[0]["headers"])[b"content-type"]
        return sent[0]["status"], sent[1]["body"], ctype

    status, payload, ctype = asyncio.run(go())
    return status, json.loads(payload) if ctype.startswith(b"application/json") else payload


def test_the_page_and_its_assets_are_served(app: ServingApp) -> None:
    status, page = call(app, "GET", "/ui/")
    assert status == 200
    assert b"console.js" in page
    assert call(app, "GET", "/ui/static/console.js")[0] == 200
    assert call(app, "GET", "/ui/static/../api.py")[0] == 404


def test_paging_by_cursor_walks_the_whole_list_once_in_rank_order(app: ServingApp) -> None:
    ranks: list[int] = []
    after = 0
    while True:
        status, page = call(app, "GET", f"/ui/api/runs/day.parquet/flows?after={after}&limit=500&proto=udp")
        assert status == 200
        ranks += [r["rank"] for r in page["rows"]]
        assert all(r["proto"] == "udp" for r in page["rows"])
        if not page["more"]:
            break
        after = page["next_after"]
    assert ranks == sorted(set(ranks))
    assert len(ranks) == call(app, "GET", "/ui/api/runs/day.parquet/count?proto=udp")[1]["count"]


def test_bad_parameters_name_their_field(app: ServingApp) -> None:
    for query, field in (("port=70000", "port"), ("ip=nope", "ip"), ("since=yesterday", "since"), ("limit=0", "limit"),
                         ("verdict=9", "verdict"), ("max_score=x", "max_score"), ("proto=t;p", "proto")):  # fmt: skip
        status, body = call(app, "GET", f"/ui/api/runs/day.parquet/flows?{query}")
        assert status == 422, query
        assert body["error"]["field"] == field
    status, body = call(app, "GET", "/ui/api/runs/nothing.parquet/flows")
    assert status == 404
    assert body["error"]["field"] == "run"
    assert call(app, "GET", "/ui/api/runs/day.parquet/events/999999")[0] == 404
    assert call(app, "GET", "/ui/api/nowhere")[0] == 404


def test_a_cidr_that_is_not_whole_octets_is_exact(world: dict[str, Path]) -> None:
    run = ScoredRun(world["runs"] / "day.parquet", world["root"] / "state")
    rows = run.page(parse_filters({"ip": "10.0.0.0/30"}), limit=500)["rows"]
    import ipaddress

    net = ipaddress.ip_network("10.0.0.0/30")
    assert all(ipaddress.ip_address(r["src_ip"]) in net or ipaddress.ip_address(r["dst_ip"]) in net for r in rows)


def test_a_csv_run_gets_a_sorted_index_with_small_groups(world: dict[str, Path]) -> None:
    run = ScoredRun(world["runs"] / "small.csv", world["root"] / "state")
    assert run.path != run.source
    assert pq.ParquetFile(run.path).metadata.row_group(0).num_rows <= INDEX_ROWS
    assert [r["rank"] for r in run.page(parse_filters({}), limit=5)["rows"]] == [1, 2, 3, 4, 5]


def test_a_verdict_is_written_to_the_models_log_and_filters_the_list(app: ServingApp, world: dict[str, Path]) -> None:
    status, event = call(app, "GET", "/ui/api/runs/day.parquet/events/3?model=t")
    assert status == 200
    assert {w["side"] for w in event["words"]} == {"src", "dst"}
    status, body = call(app, "POST", "/ui/api/runs/day.parquet/events/3/verdict", {"severity": 1, "model": "t"})
    assert status == 200
    log = world["registry"] / ".feedback" / "threat" / "t.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["severity"] == 1
    page = call(app, "GET", "/ui/api/runs/day.parquet/flows?verdict=1&model=t")[1]
    assert [r["rank"] for r in page["rows"]] == [3]
    status, body = call(app, "POST", "/ui/api/runs/day.parquet/events/3/verdict", {"severity": 5, "model": "t"})
    assert status == 422
    assert body["error"]["field"] == "severity"


def test_an_ips_view_has_its_timeline_peers_and_topics(app: ServingApp) -> None:
    ip = call(app, "GET", "/ui/api/runs/day.parquet/events/1")[1]["event"]["src_ip"]
    status, view = call(app, "GET", f"/ui/api/runs/day.parquet/ips/{ip}?model=t")
    assert status == 200
    assert view["flows"] == sum(t["flows"] for t in view["timeline"])
    assert view["peers"]
    assert view["topics"] is None or abs(sum(view["topics"]) - 1) < 0.01
    assert call(app, "GET", "/ui/api/runs/day.parquet/hosts")[1]["available"] is False


def test_models_promote_needs_a_confirmation_and_rolls_back(app: ServingApp) -> None:
    assert call(app, "POST", "/ui/api/models/promote", {"ref": "threat/t@2", "alias": "production"})[0] == 422
    status, moved = call(
        app, "POST", "/ui/api/models/promote", {"ref": "threat/t@2", "alias": "production", "confirm": True}
    )
    assert status == 200
    assert moved["version"] == 2
    status, back = call(
        app, "POST", "/ui/api/models/rollback", {"model": "threat/t", "alias": "production", "confirm": True}
    )
    assert (status, back["version"], back["was"]) == (200, 1, 2)
    assert (
        call(app, "POST", "/ui/api/models/rollback", {"model": "threat/t", "alias": "production", "confirm": True})[0]
        == 422
    )
    diff = call(app, "GET", "/ui/api/models/diff?a=threat/t@1&b=threat/t@2")[1]
    assert {r["key"] for r in diff["params"]} >= {"topics"}
    assert call(app, "GET", "/ui/api/models/diff?a=threat/t@9&b=threat/t@2")[0] == 404


def test_reports_are_listed_compared_and_kept_inside_their_folder(app: ServingApp) -> None:
    reports = call(app, "GET", "/ui/api/reports")[1]["reports"]
    assert [r["id"] for r in reports] == ["r1"]
    curve = call(app, "GET", "/ui/api/reports/curve?id=r1")[1]
    assert [p["offered_rps"] for p in curve["points"]] == [50, 100]
    assert call(app, "GET", "/ui/api/reports/file?id=../../registry&name=report.json")[0] == 400
    assert call(app, "GET", "/ui/api/reports/file?id=r1&name=../x")[0] == 422


def test_a_server_that_is_down_is_a_message(app: ServingApp) -> None:
    status, body = call(app, "GET", "/ui/api/serving?url=http://127.0.0.1:9")
    assert status == 200
    assert body["up"] is False
    assert "cannot reach" in body["message"]
    assert call(app, "GET", "/ui/api/serving?url=ftp://x")[1]["error"]["field"] == "url"


def test_the_console_routes_are_in_the_openapi_document(app: ServingApp) -> None:
    doc = call(app, "GET", "/openapi.json")[1]
    assert "/ui/api/runs/{run}/flows" in doc["paths"]


def test_serving_figures_from_two_scrapes() -> None:
    before = parse_prometheus('mlscale_http_requests_total{code="200"} 10\n')
    text = (
        'mlscale_http_requests_total{code="200"} 30\nmlscale_http_requests_total{code="503"} 5\n'
        'mlscale_http_request_duration_seconds_bucket{route="/a",le="0.001"} 50\n'
        'mlscale_http_request_duration_seconds_bucket{route="/a",le="0.01"} 100\n'
        'mlscale_http_request_duration_seconds_bucket{route="/a",le="+Inf"} 100\n'
    )
    s = summarize(parse_prometheus(text), before, 5.0)
    assert s["requests_per_s"] == pytest.approx(5.0)
    assert s["http_503_total"] == 5
    assert s["p50_ms"] == pytest.approx(1.0)
    assert 1.0 < s["p99_ms"] <= 10.0


def test_filters_reject_an_empty_window() -> None:
    with pytest.raises(ValidationError) as err:
        parse_filters({"since": "2024-01-02", "until": "2024-01-01"})
    assert err.value.field == "until"


def test_a_big_group_parquet_run_is_streamed_into_the_index(world: dict[str, Path], tmp_path: Path) -> None:
    import pyarrow as pa

    one = pq.read_table(world["runs"] / "day.parquet")
    table = pa.concat_tables([one] * 10)  # more rows than two index groups (ranks repeat: still in order)
    big = tmp_path / "big.parquet"
    pq.write_table(table, big)  # one group: too big to page from directly
    run = ScoredRun(big, tmp_path / "state")
    assert run.path != big
    meta = pq.ParquetFile(run.path).metadata
    assert meta.num_rows == table.num_rows
    assert meta.row_group(0).num_rows <= INDEX_ROWS
    shuffled = tmp_path / "shuffled.parquet"
    pq.write_table(one.take(list(range(one.num_rows))[::-1]), shuffled)  # out of rank order: sorted on copy
    assert [r["rank"] for r in ScoredRun(shuffled, tmp_path / "state").page(parse_filters({}), limit=3)["rows"]] == [
        1,
        2,
        3,
    ]


def test_scoring_on_demand_is_a_job_that_makes_a_run(app: ServingApp, world: dict[str, Path]) -> None:
    import time

    status, job = call(app, "POST", "/ui/api/runs", {"model": "t"})
    assert status == 200
    deadline = time.monotonic() + 60
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = call(app, "GET", f"/ui/api/jobs/{job['id']}")[1]
    assert job["state"] == "done", job
    run = job["result"]["run"]
    assert (world["runs"] / run).is_file()
    runs = call(app, "GET", "/ui/api/runs")[1]["runs"]
    assert next(r for r in runs if r["id"] == run)["model"] == "threat/t@2"
    assert call(app, "POST", "/ui/api/runs", {"model": "recommend/x"})[1]["error"]["field"] == "model"
    assert call(app, "GET", "/ui/api/jobs/nope")[0] == 404
