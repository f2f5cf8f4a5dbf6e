"""Schemathesis against ``/openapi.json`` of a real server with every app's models (loopback).

Bounded: a few examples per operation, so the whole run stays well under a minute. Every check is
on, both ways: no server error, every answer conforming to the document (status, content type,
headers, body schema), data the document calls invalid refused, data it calls valid not refused
as malformed.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from mlscale.apps import build_predictor
from mlscale.apps.threat import ThreatDetector
from mlscale.apps.threat import publish_model as publish_threat
from mlscale.apps.threat.synthetic import generate_flows
from mlscale.registry import open_store
from mlscale.serve import create_app
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket

_EXAMPLES = 10
# The 422s a schema-valid request may get: checks that need the model or cross fields, which the
# document states in words only (k against this model's item count, ids of this model's type, users
# or recent_items, one model kind's records, feedback fields), and JSON numbers such as 3.0, which
# JSON Schema counts as integers while the server asks for 3.
_MODEL_CHECKS = re.compile(
    r"this model|the items this model can return|expected at least one user|a list of recent items needs"
    r"|this is a (flow|DNS) model|unknown field\(s\)|Expected `int( \| str)?`, got `float`|results, more than"
    r"|analyst feedback applies|a pattern needs at least one"
)


@pytest.fixture(scope="module")
def base_url(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schemathesis-registry")
    shutil_copy = open_store(root)
    detector = ThreatDetector(topics=4, passes=2, seed=0).fit(generate_flows(2000, hosts=30, seed=0))
    publish_threat(shutil_copy, "flows", detector, metrics={}, engine="local", data_fingerprint="f")
    from mlscale.apps.recommend import from_artifact, publish_model

    recommender = from_artifact(open_store(registry).load("recommend/toy@1"))
    publish_model(shutil_copy, "toy", recommender, metrics={}, engine="local", data_fingerprint="t")
    app = create_app(root, ["ml=recommend/toy@1", "fl=threat/flows@1"], predictor_factory=build_predictor)
    loop = asyncio.new_event_loop()
    sock = bind_socket("127.0.0.1", 0, 128)
    server = Server(app, Limits(max_body=1 << 20), loop)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start(sock))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop() -> None:
        server.close()
        await asyncio.sleep(0.1)  # the transports close their sockets on the next turns of the loop

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_keeps_its_document(base_url: str, mode: GenerationMode) -> None:
    # Operations driven one by one (schemathesis' pytest plugin does not run on pytest 9 yet).
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        try:
            strategy = operation.as_strategy(generation_mode=mode)
        except Exception:  # pragma: no cover - nothing to generate in this mode
            continue

        @given(case=strategy)
        @settings(
            max_examples=_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, the failing case is shown
        )
        def check(case: Case) -> None:
            response = case.call_and_validate(
                base_url=base_url, excluded_checks=[positive_data_acceptance, not_a_server_error]
            )
            # No server error; a 503 only as the documented refusal at overload (a 1 ms deadline), with Retry-After.
            status = response.status_code
            assert status < 500 or (status == 503 and "retry-after" in response.headers), response.text
            if mode is GenerationMode.POSITIVE:
                # Valid per the document: never refused as malformed (400); a 422 only for what a JSON
                # schema cannot say (see _MODEL_CHECKS), naming the field.
                assert response.status_code != 400, response.text
                if response.status_code == 422:
                    error = response.json()["error"]
                    assert error.get("field"), response.text
                    assert _MODEL_CHECKS.search(error["message"]), response.text

        try:
            check()
        except Unsatisfiable:
            continue  # no parameters or body: no invalid request to make
        except (Exception, BaseExceptionGroup) as err:  # every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {err}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
