"""The vision model behind `mlscale serve`: image bodies and JSON batches, every bad input a 4xx, bursts batched."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.unit.apps.vision.conftest import bad_images, png

from mlscale.apps import build_predictor, get_application
from mlscale.apps.vision.data import ArrayDataset
from mlscale.apps.vision.model import VisionModel
from mlscale.apps.vision.predictor import MAX_BODY
from mlscale.apps.vision.scenario import VisionScenario
from mlscale.errors import ValidationError
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket

Answer = tuple[int, Any]


async def _read(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    size = next(int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length"))
    body = await reader.readexactly(size)
    return int(lines[0].split()[1]), json.loads(body)


def _request(path: str, body: bytes, content_type: str | None) -> bytes:
    ctype = f"content-type: {content_type}\r\n" if content_type else ""
    return f"POST {path} HTTP/1.1\r\nhost: t\r\n{ctype}content-length: {len(body)}\r\n\r\n".encode() + body


def _exchange(
    app: ServingApp, requests: list[tuple[str, bytes, str | None]], *, pipelined: bool = False
) -> list[Answer]:
    async def go() -> list[Answer]:
        sock = bind_socket("127.0.0.1", 0, 16)
        server = Server(app, Limits(max_body=16 << 20), asyncio.get_running_loop())
        await server.start(sock)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        answers = []
        try:
            if pipelined:
                writer.write(b"".join(_request(*r) for r in requests))
                await writer.drain()
                answers = [await _read(reader) for _ in requests]
            else:
                for r in requests:
                    writer.write(_request(*r))
                    await writer.drain()
                    answers.append(await _read(reader))
        finally:
            writer.close()
            server.close()
            await asyncio.sleep(0)
        return answers

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(vision_registry: Path) -> ServingApp:
    return create_app(vision_registry, ["fm=vision/fm"], predictor_factory=build_predictor)


def test_png_body_json_batch_and_pixels_agree(app: ServingApp, fm_test: ArrayDataset, small_model: VisionModel) -> None:
    images = fm_test.images[:4]
    pngs = [png(x) for x in images]
    b64 = [base64.b64encode(p).decode() for p in pngs]
    pixels = [x[..., 0].tolist() for x in images]
    answers = _exchange(
        app,
        [
            ("/v1/models/fm/classify?k=3", pngs[0], "image/png"),
            ("/v1/models/fm/classify", json.dumps({"images": b64, "k": 2}).encode(), "application/json"),
            ("/v1/models/fm/classify", json.dumps({"pixels": pixels}).encode(), None),
        ],
    )
    assert [s for s, _ in answers] == [200, 200, 200]
    (_, one), (_, batch), (_, px) = answers
    assert one["model"] == "vision/fm"
    assert one["version"] == 1
    assert len(one["predictions"]) == 1
    assert len(one["predictions"][0]["labels"]) == 3
    assert len(batch["predictions"]) == 4
    assert len(px["predictions"][0]["labels"]) == 5
    expected = small_model.predict_proba(images)
    top = [small_model.meta.labels[i] for i in expected.argmax(1)]
    assert [p["labels"][0] for p in batch["predictions"]] == top
    assert [p["labels"][0] for p in px["predictions"]] == top
    assert one["predictions"][0]["labels"][0] == top[0]
    np.testing.assert_allclose(batch["predictions"][0]["probabilities"][0], expected[0].max(), atol=1e-4)
    probs = px["predictions"][0]["probabilities"]
    assert probs == sorted(probs, reverse=True)


def test_other_sizes_and_colour_are_resized_and_converted(app: ServingApp) -> None:
    big = png(np.full((56, 40, 3), 255, np.uint8))
    (status, doc), = _exchange(app, [("/v1/models/fm/classify", big, "image/png")])  # fmt: skip
    assert status == 200
    assert len(doc["predictions"]) == 1


def test_every_bad_image_and_body_gets_its_4xx(app: ServingApp) -> None:
    path = "/v1/models/fm/classify"
    bad = bad_images()
    cases: list[tuple[str, bytes, str | None, int, str]] = [
        *(
            (path, data, "image/png", 422, "not a PNG or JPEG|unreadable|unsupported image mode|decompression bomb")
            for data in bad.values()
        ),
        (path, bad["text.png"], "text/plain", 415, "Content-Type 'text/plain' is not accepted"),
        (path, b"\x89PNG" + b"\0" * (MAX_BODY + 10), "image/png", 413, "larger than this action's limit"),
        (path, b"", "image/png", 400, "expected a image/png body"),
        (path + "?k=0", png(np.zeros((28, 28), np.uint8)), "image/png", 422, "k: expected a whole number"),
        (path + "?top=3", png(np.zeros((28, 28), np.uint8)), "image/png", 422, "unknown query parameter"),
        (path, json.dumps({"images": ["%%%"]}).encode(), "application/json", 422, r"images\[0\]: not valid base64"),
        (
            path,
            json.dumps({"images": [base64.b64encode(bad["cmyk.jpg"]).decode()]}).encode(),
            None,
            422,
            r"images\[0\]: unsupported image mode",
        ),
        (path, json.dumps({"pixels": [[[1, 2], [3, 4]]]}).encode(), None, 422, r"pixels\[0\]: expected 28 x 28"),
        (path, json.dumps({"pixels": [np.full((28, 28), 300).tolist()]}).encode(), None, 422, "0..255"),
        (path, json.dumps({"images": [], "k": 1}).encode(), None, 422, "at least one image"),
        (path, json.dumps({"images": ["x"], "pixels": [[0]]}).encode(), None, 422, "exactly one of"),
        (path, b"{", None, 400, "malformed JSON"),
    ]
    answers = _exchange(app, [(p, b, c) for p, b, c, _, _ in cases])
    for (_p, _, ctype, status, message), (got, doc) in zip(cases, answers, strict=True):
        assert got == status, (ctype, doc)
        assert re.search(message, doc["error"]["message"]), (message, doc)


def test_a_burst_is_served_in_fewer_model_calls_than_requests(app: ServingApp, fm_test: ArrayDataset) -> None:
    predictor: Any = app.slots["fm"].live.predictor
    before = predictor.classifier.calls
    pngs = [png(x) for x in fm_test.images[:40]]
    answers = _exchange(app, [("/v1/models/fm/classify", p, "image/png") for p in pngs], pipelined=True)
    assert [s for s, _ in answers] == [200] * 40
    calls = predictor.classifier.calls - before
    assert 1 <= calls < 40


def test_openapi_documents_the_image_bodies(app: ServingApp) -> None:
    doc = json.loads(app._openapi_doc)
    post = doc["paths"]["/v1/models/{name}/classify"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "image/png", "image/jpeg"}
    assert "415" in post["responses"]
    assert "413" in post["responses"]
    assert "ClassifyRequest" in doc["components"]["schemas"]


def test_scenario_sends_real_images_the_server_accepts(
    app: ServingApp, shared_data: Path, fm_test: ArrayDataset
) -> None:
    scenario = get_application("vision").scenario(
        {"batch": 0.3, "batch_size": 4, "pool": 50}, data=None, data_dir=shared_data, model="fm"
    )
    assert isinstance(scenario, VisionScenario)
    assert scenario.describe()["images"] == 50
    reqs = scenario.requests(np.random.default_rng(0), 20)
    assert {r.kind for r in reqs} == {"image", "batch"}
    assert {r.content_type for r in reqs} == {"image/png", "application/json"}
    answers = _exchange(app, [(r.path, r.body or b"", r.content_type) for r in reqs])
    assert [s for s, _ in answers] == [200] * 20
    with pytest.raises(ValidationError, match="unknown option"):
        get_application("vision").scenario({"users": 3}, data=None, data_dir=shared_data, model="fm")
