"""The contract between the prediction service and an application.

The service never imports an application: for each served model it calls
the *predictor factory* its caller injected (``mlscale serve`` passes the
model's application's ``Application.predictor``) and gets a :class:`Predictor`.
A predictor names the :class:`Action` objects it answers; each becomes
``POST /v1/models/{name}/{action}`` (a JSON body decoded straight into
``request_type``) and, when ``from_path`` is given, a ``GET
/v1/models/{name}/{action}/{key}`` form for one key. The service coalesces
concurrent requests into micro-batches and hands each batch to ``run`` in one
call, so an application only has to be fast on a list of requests.

>>> from dataclasses import dataclass
>>> @dataclass
... class Echo:
...     text: str
>>> class EchoPredictor(Predictor):
...     def actions(self) -> list[Action[Echo]]:
...         return [Action("echo", "say it back", Echo, Echo, run=lambda batch: list(batch))]
>>> [a.name for a in EchoPredictor().actions()]
['echo']
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = ["Action", "Predictor"]

R = TypeVar("R")


def _unit_cost(request: Any) -> int:
    return 1


@dataclass(frozen=True, slots=True)
class Action(Generic[R]):
    """One verb a model answers: ``POST /v1/models/{name}/{name of the action}``.

    ``run`` receives a micro-batch (requests that arrived together) and returns
    one result per request, in order: a value ``msgspec`` can encode to JSON, or
    an :class:`~mlscale.errors.MlscaleError` *instance* for a request that
    failed on its own (its status is the error's ``http_status``); one bad
    request must never fail the others. It runs on the server's event loop, so
    it should be vectorised rather than sleep or wait.

    ``validate`` runs before a request is queued (raise
    :class:`~mlscale.errors.ValidationError` naming the field: the client gets
    a 422 at once) and returns the request's *cost* in rows (users, items,
    images...), which bounds batch sizes and the queue. ``from_path`` builds a
    request from ``GET .../{key}?query`` (``query`` holds the decoded
    parameters); ``path_key`` and ``query_params`` (name -> description)
    document that form in ``/openapi.json``.
    """

    name: str
    summary: str
    request_type: type[R]
    response_type: type[Any]
    run: Callable[[Sequence[R]], Sequence[Any]]
    validate: Callable[[R], int] = _unit_cost
    from_path: Callable[[str, Mapping[str, str]], R] | None = None
    path_key: str = "key"
    query_params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class Predictor(abc.ABC):
    """Answers one loaded model version's requests, a micro-batch at a time.

    The service builds one predictor per model version and per worker process,
    warms it before it takes traffic (or replaces the previous version during a
    hot swap), and drops it when a newer version takes over.
    """

    @abc.abstractmethod
    def actions(self) -> Sequence[Action[Any]]:
        """The actions this model answers (names must be unique, URL-safe words)."""

    def warm(self) -> None:  # noqa: B027 - optional hook
        """Run representative requests so that the first real one is as fast as the rest.

        Called before the version is served: touch the memory-mapped arrays,
        let BLAS set itself up, and exercise every code path a request can take.
        """

    def describe(self) -> dict[str, Any]:
        """Facts about the model shown by ``GET /v1/models`` (sizes, parameters...)."""
        return {}
