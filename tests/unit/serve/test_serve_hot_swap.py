"""Hot swap: the watcher follows an alias, keeps serving when a new version is broken."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mlscale.apps import build_predictor
from mlscale.apps.recommend import ImplicitRecommender, publish_model
from mlscale.registry import ModelRef, open_store
from mlscale.serve._app import ServeMetrics
from mlscale.serve._metrics import Metrics
from mlscale.serve._models import BatchSettings, LiveModel, ModelSlot, Watcher, load_live


def test_the_watcher_swaps_good_versions_and_skips_broken_ones(
    tmp_path: Path, small_model: ImplicitRecommender
) -> None:
    store = open_store(tmp_path)
    for _ in range(3):
        publish_model(store, "m", small_model, metrics={}, engine="local", data_fingerprint="x")
    store.promote("recommend/m@1", "production")
    damaged = next(store.version_dir("recommend", "m", 2).glob("item_factors*"))
    ref = ModelRef.parse("recommend/m@production")
    metrics = ServeMetrics(Metrics(None, worker="t"))
    slot = ModelSlot(
        "m",
        ref,
        load_live(store, ref.with_selector("1"), predictor_factory=build_predictor),
        BatchSettings(),
        metrics.stats,
    )
    swaps: list[tuple[int | None, bool]] = []

    def on_swap(s: ModelSlot, live: LiveModel | None, error: BaseException | None) -> None:
        swaps.append((None if live is None else live.manifest.version, error is not None))

    async def go() -> list[bool]:
        loop = asyncio.get_running_loop()
        watcher = Watcher(store, [slot], loop, predictor_factory=build_predictor, interval=60, on_swap=on_swap)
        outcomes = [await loop.run_in_executor(None, watcher.check, slot)]  # nothing moved
        store.promote("recommend/m@2", "production")
        # Version 2 is damaged on disk once promoted (promote verifies first): its checksum no longer matches.
        damaged.write_bytes(damaged.read_bytes()[:-8] + b"\0" * 8)
        outcomes.append(await loop.run_in_executor(None, watcher.check, slot))
        outcomes.append(await loop.run_in_executor(None, watcher.check, slot))  # not retried at once
        store.promote("recommend/m@3", "production")
        outcomes.append(await loop.run_in_executor(None, watcher.check, slot))
        await asyncio.sleep(0)
        return outcomes

    assert asyncio.run(go()) == [False, False, False, True]
    assert slot.live.manifest.version == 3
    assert swaps == [(None, True), (3, False)]
    assert set(slot.batchers) == {"recommend", "similar"}


def test_a_fixed_version_is_not_polled(registry: Path) -> None:
    store = open_store(registry)
    ref = ModelRef.parse("recommend/toy@1")
    metrics = ServeMetrics(Metrics(None, worker="t"))
    slot = ModelSlot(
        "toy", ref, load_live(store, ref, predictor_factory=build_predictor), BatchSettings(), metrics.stats
    )
    assert not slot.follows
    watcher = Watcher(store, [slot], asyncio.new_event_loop(), predictor_factory=build_predictor, interval=60)
    try:
        assert watcher.slots == []
    finally:
        watcher.loop.close()
