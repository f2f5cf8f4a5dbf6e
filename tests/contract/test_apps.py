"""The contract suite: every installed application, and the example app under tests/, passes the same checks.

Discovery; params round trip (CLI flags <-> params <-> manifest); train on a
tiny data set on each engine the app declares (``spark`` marked); publish and
load; one request through a real server on loopback; its load-test scenario
for about a second. The data comes from the app itself
(:meth:`Application.example_data`), so this file names no application.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import mlscale.apps as discovery
from mlscale._cli.params import add_params_arguments, params_from_args, params_to_argv
from mlscale.apps import VERBS, Application, application_names, build_predictor, get_application
from mlscale.apps.base import params_from_dict, params_to_dict
from mlscale.cli import main
from mlscale.errors import ConfigError
from mlscale.loadtest import Slo, StepSpec, run_loadtest
from mlscale.registry import open_store
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Limits, Server
from mlscale.serve._supervisor import bind_socket

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "example_app"
EXAMPLE = "mean=mean_app:application"
INSTALLED = application_names()
APPS = [*INSTALLED, "mean"]


def _cases() -> list[object]:
    """(app, engine) for every engine each app declares; Spark cases carry the ``spark`` mark."""
    cases: list[object] = []
    for name in APPS:
        engines = ["local"] if name == "mean" else list(get_application(name).trainers)
        for engine in engines:
            marks = [pytest.mark.spark] if engine == "spark" else []
            cases.append(pytest.param(name, engine, id=f"{name}-{engine}", marks=marks))
    return cases


@pytest.fixture(autouse=True)
def example_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example application, registered the test-only way (``MLSCALE_APPS``), not packaged."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    monkeypatch.setenv("MLSCALE_APPS", EXAMPLE)
    discovery._entry_points.cache_clear()
    discovery._load.cache_clear()
    yield
    monkeypatch.delenv("MLSCALE_APPS")
    discovery._entry_points.cache_clear()
    discovery._load.cache_clear()


@pytest.mark.parametrize("name", APPS)
def test_discovery(name: str) -> None:
    app = get_application(name)
    assert isinstance(app, Application)
    assert app.name == name
    assert app.verbs <= set(VERBS)
    assert "train" in app.verbs
    assert app.params, "an application declares at least one params class"


@pytest.mark.parametrize("name", APPS)
def test_params_round_trip(name: str) -> None:
    app = get_application(name)
    for family, cls in app.params.items():
        params = cls()
        parser = argparse.ArgumentParser()
        add_params_arguments(parser, app.params)
        args = parser.parse_args(params_to_argv(params, family if len(app.params) > 1 else None))
        assert params_from_args(app.params, args) == (family, params)
        assert params_from_dict(cls, params_to_dict(params)) == params
        assert params_from_dict(cls, {**params_to_dict(params), "not_a_field": 1}) == params


@contextmanager
def _served(app: ServingApp) -> Iterator[int]:
    """The app behind a real HTTP server on a loopback port (its own event loop thread)."""
    loop = asyncio.new_event_loop()
    sock = bind_socket("127.0.0.1", 0, 128)
    server = Server(app, Limits(), loop)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start(sock))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield int(sock.getsockname()[1])
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize(("name", "engine"), _cases())
def test_train_publish_load_serve_and_load_test(
    name: str, engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "spark":
        request.getfixturevalue("spark_engine")
    app = get_application(name)
    (tmp_path / "data").mkdir()
    data, options = app.example_data(tmp_path / "data")
    registry = tmp_path / "registry"
    flags = [x for key, value in options.items() for x in (f"--{key.replace('_', '-')}", str(value))]
    argv = ["train", name, "--data", data, "--name", "contract", "--registry", str(registry), "--engine", engine]
    if engine == "spark":
        argv += ["--spark-master", "local[2]"]
    assert main([*argv, *flags]) == 0

    # published: the manifest holds the params the flags asked for (defaults filled in by the engine's, then the
    # class's), and the artifact loads back through the app's codec
    store = open_store(registry)
    manifest = store.resolve(f"{name}/contract")
    assert manifest.engine == engine
    family = app.family_of(manifest.params)
    parser = argparse.ArgumentParser()
    add_params_arguments(parser, app.params)
    wanted = params_from_args(app.params, parser.parse_args(flags), app.implementation("train", engine).param_defaults)[
        1
    ]
    assert params_from_dict(app.params[family], manifest.params) == wanted
    model = app.codec.from_artifact(store.load(manifest.ref))
    assert model is not None

    # served: one request through a real server, then the app's scenario for about a second
    if not app.servable:
        pytest.skip(f"the {name} app does not serve")
    served = create_app(store, [f"{name}/contract"], predictor_factory=build_predictor)
    scenario = app.scenario({}, data=data, data_dir=tmp_path / "data", model="contract")
    with _served(served) as port:
        first = scenario.requests(np.random.default_rng(0), 1)[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(first.method, first.path, body=first.body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 200, body
        assert response.getheader("x-model-version") == "1"
        report = run_loadtest(
            f"http://127.0.0.1:{port}", scenario, StepSpec(rate=40, duration=1.0, timeout=10.0), Slo(), processes=1
        )
    step = report.steps[0][0]
    assert step.ok > 0, step
    assert step.errors == {}, step.errors


def test_an_engine_without_a_trainer_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = get_application("mean").example_data(tmp_path)
    argv = ["train", "mean", "--data", data, "--name", "m", "--engine", "spark", "--registry", str(tmp_path / "r")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "the mean app cannot train on 'spark' yet; engines: local" in err
    assert "Traceback" not in err


def test_an_app_without_its_libraries_says_the_pip_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fault injected: the app declares a library this machine does not have.
    monkeypatch.setattr(type(get_application("mean")), "requires", ("mlscale_no_such_library",))
    discovery._load.cache_clear()
    with pytest.raises(ConfigError, match="mlscale_no_such_library") as info:
        get_application("mean")
    assert info.value.hint == "install it with `pip install 'mlscale[mean]'`"
    # the command line still works for everything else, and using the app says the line
    assert main(["models", "list", "--registry", str(tmp_path)]) == 0
    assert main(["train", "mean", "--data", "x.parquet", "--name", "m", "--registry", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "pip install 'mlscale[mean]'" in err
    assert "Traceback" not in err


def test_the_example_app_is_one_folder() -> None:
    files = sorted(p.relative_to(EXAMPLE_DIR).as_posix() for p in EXAMPLE_DIR.rglob("*.py"))
    assert files == ["mean_app/__init__.py"]
