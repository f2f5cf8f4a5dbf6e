"""The prediction service: ``mlscale serve``, fast, micro-batched, multi-process, safe under overload.

Routes (HTTP/1.1, JSON):

- ``POST /v1/models/{name}/{action}``: a batch request (``recommend``, ``similar``
  for recommenders); ``GET /v1/models/{name}/{action}/{key}``: one key;
- ``GET /v1/models``, ``/v1/models/{name}``: what is served, which version;
- ``GET /healthz`` (alive), ``/readyz`` (models loaded and warmed, not draining),
  ``/metrics`` (Prometheus), ``/openapi.json`` (every route, with schemas);
- whatever a caller mounts (:mod:`mlscale.serve.mount`: ``mlscale serve --console`` adds ``/ui/``).

How it stays fast and safe: concurrent requests to one model are coalesced into
one vectorised call (:mod:`mlscale.serve._batcher`); several worker processes
share one listening socket and the memory-mapped model arrays, and a dead
worker is replaced (:mod:`mlscale.serve._supervisor`); a moved alias is
hot-swapped without a failed request (:mod:`mlscale.serve._models`); a bounded
queue with deadlines answers 503 + ``Retry-After`` at once instead of letting
latency grow. Applications plug in through :class:`Predictor`, built by a
*predictor factory* the caller injects (``mlscale serve`` passes
``mlscale.apps:build_predictor``): this stage never names an application.

>>> import tempfile
>>> import numpy as np
>>> from mlscale.apps import build_predictor
>>> from mlscale.apps.recommend import ImplicitRecommender, publish_model
>>> from mlscale.apps.recommend.matrix import InteractionMatrix
>>> from mlscale.registry import open_store
>>> rng = np.random.default_rng(0)
>>> users = rng.integers(0, 50, 2000); items = (users % 5) * 10 + rng.integers(0, 10, 2000)
>>> matrix = InteractionMatrix.from_arrays(users, items)
>>> model = ImplicitRecommender(factors=8, iterations=5, threads=1).fit(matrix)
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = open_store(tmp)
...     _ = publish_model(store, "demo", model, metrics={}, engine="local", data_fingerprint="x")
...     app = create_app(store, ["recommend/demo"], predictor_factory=build_predictor)
...     print(sorted(app.slots), sorted(app.slots["demo"].live.actions))
...     del app
['demo'] ['recommend', 'similar']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from mlscale.config import load_settings
from mlscale.errors import ConfigError
from mlscale.registry import Store, open_store
from mlscale.serve._app import ServingApp
from mlscale.serve._batcher import OverloadedError
from mlscale.serve._config import ServeConfig
from mlscale.serve._metrics import Metrics
from mlscale.serve._models import PredictorFactory, parse_model_arg, resolve_factory
from mlscale.serve._supervisor import Supervisor, bind_socket
from mlscale.serve.mount import Mount, Reply, build_mount
from mlscale.serve.predictor import Action, Predictor

__all__ = [
    "Action",
    "Mount",
    "OverloadedError",
    "Predictor",
    "PredictorFactory",
    "Reply",
    "ServeConfig",
    "ServingApp",
    "Supervisor",
    "build_mount",
    "create_app",
    "resolve_models",
    "serve",
]


def resolve_models(store: Store, specs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``[NAME=]APP/MODEL[@alias|version]`` strings -> (served name, reference) pairs, checked.

    With no spec, every model of the registry is served: at its ``production``
    alias when it has one, else at ``latest``. Raises
    :class:`~mlscale.errors.ModelNotFoundError` for a reference that names
    nothing. Whether each application can serve is the predictor factory's to say.
    """
    pairs: list[tuple[str, str]] = []
    if specs:
        for spec in specs:
            name, model_ref = parse_model_arg(spec, store)
            pairs.append((name, str(model_ref)))
    else:
        for app, model in dict.fromkeys((m.app, m.name) for m in store.list()):
            alias = "production" if "production" in store.aliases(app, model) else "latest"
            pairs.append((model, f"{app}/{model}" + ("" if alias == "latest" else f"@{alias}")))
        if not pairs:
            raise ConfigError(
                f"no model to serve: the registry {store.location} is empty",
                hint="train one (mlscale train recommend --data ... --name NAME) or pass --registry",
            )
    for _, ref in pairs:
        store.resolve(ref)
    return tuple(pairs)


def create_app(
    store: Store | str | os.PathLike[str],
    refs: Sequence[str],
    *,
    predictor_factory: PredictorFactory | str,
    token: str | None = None,
    timeout: float = 1.0,
    max_batch: int = 256,
    batch_wait: float = 0.0,
    max_queue: int = 2048,
    verify: bool = True,
) -> ServingApp:
    """Load and warm ``refs`` in this process; the app serving them (also an ASGI application).

    ``refs`` are ``[NAME=]APP/MODEL[@alias|version]``; ``predictor_factory``
    builds each one's predictor (a callable, or ``"module:attribute"``). This is the in-process
    building block: ``mlscale serve`` (:func:`serve`) runs it in each worker
    behind its own HTTP server, with hot swap and worker supervision.
    """
    from mlscale.serve._worker import build_app  # not at import: the worker module is also run as __main__

    store = store if isinstance(store, Store) else open_store(store)
    config = ServeConfig(
        registry=store.location,
        models=resolve_models(store, refs),
        timeout=timeout,
        max_batch=max_batch,
        batch_wait=batch_wait,
        max_queue=max_queue,
        verify=verify,
        predictor_factory=predictor_factory if isinstance(predictor_factory, str) else "",
    )
    factory = resolve_factory(predictor_factory)
    return build_app(config, store, Metrics(None, worker=str(os.getpid())), token, factory)


def serve(
    config: ServeConfig,
    *,
    token: str | None = None,
    on_ready: Callable[[Supervisor], None] | None = None,
) -> int:
    """Run the service until SIGTERM or SIGINT (blocking); returns the exit status.

    Binds ``config.host:config.port``, starts ``config.workers`` worker
    processes, waits until every one has its models warm, calls ``on_ready``,
    then replaces any worker that dies. ``token`` (default:
    ``MLSCALE_API_TOKEN``) protects every route but the health checks.
    """
    if not config.predictor_factory and config.models:
        raise ConfigError(
            "the configuration names no predictor factory for the workers",
            hint="set ServeConfig.predictor_factory='package.module:function' (mlscale serve sets it)",
        )
    token = token if token is not None else load_settings().api_token
    env = dict(os.environ)
    if token is not None:
        env["MLSCALE_API_TOKEN"] = token
    sock = bind_socket(config.host, config.port, config.backlog)
    supervisor = Supervisor(config, sock, env=env)
    try:
        supervisor.start()
        if on_ready is not None:
            on_ready(supervisor)
    except BaseException:  # an interrupted start must not leave workers behind
        supervisor.stop()
        raise
    return supervisor.run()
