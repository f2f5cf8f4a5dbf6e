"""Served models: loading a version, warming it, and swapping in a new one while serving.

A served name (``ml``) follows a registry reference (``recommend/ml@production``).
A watcher thread polls :meth:`Store.current_version` (it reads one small file)
and, when the alias moves, loads the new version memory-mapped, builds and
warms its predictor *off* the event loop, then swaps it in on the loop between
two batches: the batch in progress finishes on the old version, the next one
runs on the new, and no request fails or waits for the load.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from mlscale.errors import ConfigError, MlscaleError
from mlscale.registry import LoadedModel, Manifest, ModelRef, Store
from mlscale.serve._batcher import Batcher, BatchStats
from mlscale.serve.predictor import Action, Predictor

__all__ = [
    "BatchSettings",
    "LiveModel",
    "ModelSlot",
    "PredictorFactory",
    "Watcher",
    "load_live",
    "parse_model_arg",
    "resolve_factory",
]

#: What turns a loaded registry version into the predictor that serves it. The serve stage names no
#: application: its caller (the CLI) injects this, as a callable or a ``"module:attribute"`` path the
#: worker processes import.
PredictorFactory = Callable[[LoadedModel], Predictor]

log = logging.getLogger("mlscale.serve")


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Bounds of the micro-batches and of the queue, per (model, action)."""

    max_batch: int = 256
    max_wait: float = 0.0
    max_queue: int = 2048


@dataclass(frozen=True, slots=True)
class LiveModel:
    """One loaded, warmed model version with its actions and request decoders."""

    manifest: Manifest
    predictor: Predictor
    actions: Mapping[str, Action[Any]]
    decoders: Mapping[str, msgspec.json.Decoder[Any]]
    loaded_at: float
    version_header: bytes = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version_header", str(self.manifest.version).encode())


def resolve_factory(factory: PredictorFactory | str) -> PredictorFactory:
    """A predictor factory given as itself or as ``"module:attribute"`` (how a worker process receives it)."""
    if not isinstance(factory, str):
        return factory
    module, sep, attr = factory.partition(":")
    if not sep:
        raise ConfigError(
            f"no predictor factory to build served models with (got {factory!r})",
            hint="pass predictor_factory='package.module:function' (mlscale serve passes mlscale.apps:build_predictor)",
        )
    found: PredictorFactory = getattr(importlib.import_module(module), attr)
    return found


def load_live(store: Store, ref: ModelRef, *, predictor_factory: PredictorFactory, verify: bool = True) -> LiveModel:
    """Load the version ``ref`` names (memory-mapped), build its predictor with the factory and warm it."""
    loaded = store.load(ref, mmap=True, verify=verify)
    predictor = predictor_factory(loaded)
    actions = {a.name: a for a in predictor.actions()}
    if len(actions) != len(predictor.actions()):
        raise ConfigError(f"{loaded.ref}: the predictor names an action twice")
    predictor.warm()
    decoders = {name: msgspec.json.Decoder(a.request_type) for name, a in actions.items()}
    return LiveModel(loaded.manifest, predictor, actions, decoders, time.time())


def parse_model_arg(text: str, store: Store) -> tuple[str, ModelRef]:
    """``[NAME=]APP/MODEL[@alias|version]`` or ``MODEL[@...]`` -> (served name, reference).

    A bare model name is looked up in the registry; the served name defaults
    to the model's name.
    """
    name, sep, ref_text = text.partition("=")
    if not sep:
        name, ref_text = "", text
    if "/" not in ref_text:
        model, at, selector = ref_text.partition("@")
        apps = sorted({m.app for m in store.list() if m.name == model})
        if not apps:
            raise ConfigError(f"--model {text}: no model named {model!r} in the registry")
        if len(apps) > 1:
            raise ConfigError(
                f"--model {text}: {model!r} exists in several applications ({', '.join(apps)})",
                hint=f"say which: --model {apps[0]}/{ref_text}",
            )
        ref_text = f"{apps[0]}/{model}{at}{selector}"
    ref = ModelRef.parse(ref_text)
    return (name or ref.name), ref


class ModelSlot:
    """A served name: the live version, one batcher per action, and the swap."""

    def __init__(
        self,
        name: str,
        ref: ModelRef,
        live: LiveModel,
        settings: BatchSettings,
        stats: Callable[[str, str], BatchStats],
    ) -> None:
        self.name = name
        self.ref = ref
        self.live = live
        self.settings = settings
        self._stats = stats
        self.batchers: dict[str, Batcher] = {}
        self.failed_version: int | None = None
        self.failed_at = 0.0
        self._sync_batchers()

    def _sync_batchers(self) -> None:
        for action in self.live.actions:
            if action not in self.batchers:
                self.batchers[action] = Batcher(
                    functools.partial(self._run, action),
                    max_batch=self.settings.max_batch,
                    max_wait=self.settings.max_wait,
                    max_queue=self.settings.max_queue,
                    stats=self._stats(self.name, action),
                )

    def _run(self, action: str, requests: Sequence[Any]) -> Sequence[Any]:
        act = self.live.actions.get(action)
        if act is None:
            gone = MlscaleError(f"model {self.name!r} no longer answers {action!r}")
            gone.http_status = 404
            return [gone] * len(requests)
        return act.run(requests)

    @property
    def follows(self) -> bool:
        """Whether the reference can move (an alias or ``latest``), so the watcher polls it."""
        return self.ref.version is None

    def swap(self, live: LiveModel) -> None:
        """Serve ``live`` from the next batch on (call on the event loop)."""
        old = self.live.manifest.version
        self.live = live
        self._sync_batchers()
        log.warning("%s: now serving %s (was version %d)", self.name, live.manifest.ref, old)


class Watcher(threading.Thread):
    """Polls the registry and hot-swaps the served versions (a daemon thread per worker)."""

    def __init__(
        self,
        store: Store,
        slots: Sequence[ModelSlot],
        loop: asyncio.AbstractEventLoop,
        *,
        predictor_factory: PredictorFactory,
        interval: float,
        verify: bool = True,
        on_swap: Callable[[ModelSlot, LiveModel | None, BaseException | None], None] | None = None,
        retry_after: float = 30.0,
    ) -> None:
        super().__init__(name="mlscale-model-watcher", daemon=True)
        self.store = store
        self.slots = [s for s in slots if s.follows]
        self.loop = loop
        self.predictor_factory = predictor_factory
        self.interval = interval
        self.verify = verify
        self.on_swap = on_swap
        self.retry_after = retry_after
        self.stopped = threading.Event()
        self._last_error: dict[str, str] = {}

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            for slot in self.slots:
                if self.stopped.is_set():
                    return
                try:
                    self.check(slot)
                except Exception:  # the watcher must outlive any surprise
                    log.exception("%s: checking for a new version failed", slot.name)

    def check(self, slot: ModelSlot) -> bool:
        """Swap ``slot`` to the version its reference names now, if it changed; True if it did."""
        try:
            version = self.store.current_version(slot.ref)
        except MlscaleError as err:
            if self._last_error.get(slot.name) != str(err):
                log.warning("%s: keeping version %d: %s", slot.name, slot.live.manifest.version, err)
                self._last_error[slot.name] = str(err)
            return False
        self._last_error.pop(slot.name, None)
        if version == slot.live.manifest.version:
            return False
        if version == slot.failed_version and time.monotonic() - slot.failed_at < self.retry_after:
            return False
        exact = ModelRef(slot.ref.app, slot.ref.name, str(version))
        try:
            live = load_live(self.store, exact, predictor_factory=self.predictor_factory, verify=self.verify)
        except Exception as exc:
            slot.failed_version, slot.failed_at = version, time.monotonic()
            log.error(
                "%s: cannot load %s, keeping version %d: %s",
                slot.name,
                exact,
                slot.live.manifest.version,
                exc,
            )
            if self.on_swap is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self.on_swap, slot, None, exc)
            return False
        done = threading.Event()

        def swap() -> None:
            slot.swap(live)
            if self.on_swap is not None:
                self.on_swap(slot, live, None)
            done.set()

        try:
            self.loop.call_soon_threadsafe(swap)
        except RuntimeError:  # the loop closed while loading: the worker is shutting down
            return False
        done.wait(5.0)
        return True

    def stop(self) -> None:
        """Stop polling (the thread ends within one interval)."""
        self.stopped.set()
