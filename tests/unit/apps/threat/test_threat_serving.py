"""The threat model served by `mlscale serve` (score, feedback) and its load-test scenario."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps import build_predictor, get_application
from mlscale.apps.threat import FeedbackLog, ThreatDetector, publish_model
from mlscale.apps.threat.predictor import Flow, ScoreRequest, ThreatPredictor
from mlscale.apps.threat.scenario import ThreatScenario
from mlscale.errors import ValidationError
from mlscale.registry import open_store
from mlscale.serve import create_app
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, detector001: ThreatDetector) -> Path:
    root = tmp_path_factory.mktemp("registry")
    publish_model(open_store(root), "c001", detector001, metrics={}, engine="local", data_fingerprint="f")
    return root


def _flows(table: pa.Table, n: int) -> list[dict[str, Any]]:
    rows = table.slice(0, n).to_pylist()
    keep = (
        "src_ip",
        "dst_ip",
        "src_port",
        "dst_port",
        "proto",
        "src_bytes",
        "dst_bytes",
        "src_pkts",
        "dst_pkts",
        "duration",
        "state",
        "flow_id",
    )
    return [{k: r[k] for k in keep if r[k] is not None} for r in rows]


def test_predictor_matches_batch_scoring(detector001: ThreatDetector, capture001: pa.Table) -> None:
    p = ThreatPredictor(detector001, model_ref="threat/c001", version=1, feedback_log=None)
    p.warm()
    flows = _flows(capture001, 30)
    requests = [
        msgspec.convert({"flows": flows[:10]}, ScoreRequest),
        msgspec.convert({"flows": flows[10:]}, ScoreRequest),
    ]
    out = p.score_batch(requests)
    got = [r.score for resp in out for r in resp.results]  # type: ignore[union-attr]
    expected = detector001.score(capture001.slice(0, 30)).score
    assert np.allclose(got, expected)
    assert out[0].results[0].flow_id == flows[0]["flow_id"]  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="flow model"):
        p.validate_score(ScoreRequest())
    assert p.validate_score(requests[1]) == 20


def test_served_score_and_feedback_routes(registry: Path, capture001: pa.Table) -> None:
    app = create_app(registry, ["c001=threat/c001"], predictor_factory=build_predictor)
    flows = _flows(capture001, 5)

    async def go() -> list[tuple[int, Any]]:
        sock = bind_socket("127.0.0.1", 0, 16)
        server = Server(app, Limits(max_body=1 << 20), asyncio.get_running_loop())
        await server.start(sock)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        answers = []
        try:
            for path, body in (
                ("/v1/models/c001/score", {"flows": flows}),
                ("/v1/models/c001/score", {"flows": [{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 99999}]}),
                ("/v1/models/c001/feedback", {"severity": 3, "kind": "pattern", "match": {"dst_port": 1177}}),
                ("/v1/models/c001/feedback", {"severity": 7, "kind": "pattern", "match": {"dst_port": 1}}),
            ):
                data = json.dumps(body).encode()
                writer.write(f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                lines = head.decode().split("\r\n")
                size = next(int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length"))
                answers.append((int(lines[0].split()[1]), json.loads(await reader.readexactly(size))))
        finally:
            writer.close()
            server.close()
            await asyncio.sleep(0)
        return answers

    answers = asyncio.run(go())
    (s1, score), (s2, _), (s3, fb), (s4, _) = answers
    assert s1 == 200
    assert len(score["results"]) == 5
    assert score["model"] == "threat/c001"
    assert score["results"][0]["src_word"]
    assert score["results"][0]["score"] < 0
    assert s2 == 422  # a port out of range is the client's mistake
    assert s3 == 200
    assert fb["recorded"] == 1
    assert s4 == 422
    verdicts = FeedbackLog(Path(fb["log"])).read()
    assert [dict(v.match) for v in verdicts] == [{"dst_port": 1177}]
    assert Path(fb["log"]).is_relative_to(registry)


def test_scenario_sends_batches_of_real_flows(shared_data: Path) -> None:
    data = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious"
    app = get_application("threat")
    scenario = app.scenario(
        {"batch_size": 8, "single": 0.5, "pool": 300}, data=str(data), data_dir=shared_data, model="c001"
    )
    assert isinstance(scenario, ThreatScenario)
    reqs = scenario.requests(np.random.default_rng(0), 40)
    kinds = {r.kind for r in reqs}
    assert kinds == {"single", "batch"}
    body = json.loads(next(r for r in reqs if r.kind == "batch").body or b"")
    assert len(body["flows"]) == 8
    assert {"src_ip", "dst_ip", "dst_port"} <= set(body["flows"][0])
    msgspec.convert(body, ScoreRequest)  # the server accepts what the scenario sends
    assert scenario.describe()["flows"] == 300
    with pytest.raises(ValidationError, match="unknown option"):
        app.scenario({"k": 3}, data=str(data), data_dir=shared_data, model="c001")


def test_flow_struct_refuses_bad_records() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"flows": [{"src_ip": "10.0.0.1"}]}, ScoreRequest)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"flows": [{"src_ip": "a", "dst_ip": "b", "src_bytes": -1}]}, ScoreRequest)
    assert Flow(src_ip="a", dst_ip="b").proto == "tcp"
