"""Long actions of the console, run in a background thread with a status the page polls.

``score`` ranks a data set with a threat model into a new scored run;
``retrain`` trains a new version of the model through the application
contract (the same trainer, feedback and publish as ``mlscale train threat``,
so recorded low-risk verdicts are re-injected), then scores its training data
with it and reports where each rated pattern ranked before and after.

A job's status is a JSON file in the state folder (``jobs/<id>.json``), written
atomically at each step, so any worker process of a server can answer for it.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from mlscale.apps import get_application
from mlscale.apps.base import Job, params_from_dict, publish_model
from mlscale.apps.threat.app import feedback_log, resolve_data
from mlscale.apps.threat.feedback import Verdict
from mlscale.console.hunt import verdict_severity
from mlscale.engines import get_engine
from mlscale.errors import MlscaleError, ValidationError
from mlscale.registry import ModelRef, Store

__all__ = ["JobRunner", "best_ranks"]

_APP = "threat"
_STALE_S = 3600.0


def best_ranks(path: Path, verdicts: Sequence[Verdict]) -> list[int | None]:
    """Per verdict, the best (lowest) rank of a row of the run at ``path`` it matches (None: none)."""
    best: list[int | None] = [None] * len(verdicts)
    dataset = ds.dataset(path, format="parquet")
    cols = [c for c in ("rank", "ts", "src_ip", "dst_ip", "src_port", "dst_port", "proto") if c in dataset.schema.names]
    for batch in dataset.to_batches(columns=cols, batch_size=65_536):
        ranks = batch.column(0).to_numpy()
        for i, v in enumerate(verdicts):
            if best[i] is not None:
                continue
            hit = verdict_severity(batch, [v]) > 0
            if hit.any():
                best[i] = int(ranks[hit][0])
    return best


class JobRunner:
    """Starts jobs in threads; their status lives in ``state/jobs``."""

    def __init__(self, store: Store, data_dir: Path, runs: Path, state: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.runs = runs
        self.folder = state / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- status ------------------------------------------------------------------------------------

    def _write(self, job_id: str, status: dict[str, Any]) -> None:
        path = self.folder / f"{job_id}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(status, indent=1, default=str))
        tmp.replace(path)

    def status(self, job_id: str) -> dict[str, Any]:
        """A job's status (``state``: running, done or failed; ``steps``; ``result`` or ``error``)."""
        if not job_id.isalnum():
            raise ValidationError(f"not a job id: {job_id!r}", field="job")
        path = self.folder / f"{job_id}.json"
        if not path.is_file():
            from mlscale.console.hunt import NotFoundError

            raise NotFoundError(f"no job {job_id!r}", field="job")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def running(self) -> bool:
        """Whether a job is running (one whose status has not moved for an hour died with its process)."""
        now = time.time()
        for path in self.folder.glob("*.json"):
            try:
                state = json.loads(path.read_text()).get("state")
            except (OSError, ValueError):
                continue
            if state == "running" and now - path.stat().st_mtime < _STALE_S:
                return True
        return False

    def _start(self, kind: str, work: Callable[[Callable[[str], None]], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if self.running():
                raise _BusyError("another job is running; wait for it to finish", field="job")
            job_id = uuid.uuid4().hex[:12]
            status: dict[str, Any] = {
                "id": job_id,
                "kind": kind,
                "state": "running",
                "steps": [],
                "started": time.time(),
            }
            self._write(job_id, status)

        def step(line: str) -> None:
            status["steps"].append(line)
            self._write(job_id, status)

        def run() -> None:
            try:
                status["result"] = work(step)
                status["state"] = "done"
            except MlscaleError as err:
                status["state"], status["error"] = "failed", str(err)
            except Exception as err:  # a bug: keep it in the status, the page shows it
                status["state"], status["error"] = "failed", f"internal error: {err}"
                traceback.print_exc()
            status["finished"] = time.time()
            self._write(job_id, status)

        threading.Thread(target=run, name=f"console-{kind}-{job_id}", daemon=True).start()
        return status

    # -- the jobs ------------------------------------------------------------------------------------

    def score(self, model: str, data: str | None) -> dict[str, Any]:
        """Start scoring ``data`` (default: the model's training data) with ``model`` into a new run."""
        ref = self._model(model)
        manifest = self.store.resolve(ref)
        spec = data or str(manifest.extra.get("data") or "")
        if not spec:
            raise ValidationError("say which data to score", field="data")
        resolve_data(spec, self.data_dir)  # a bad path fails now, not in the thread
        return self._start("score", lambda step: self._score(str(manifest.ref), spec, step))

    def retrain(self, model: str, before_run: Path | None) -> dict[str, Any]:
        """Start a retrain of ``model`` with its recorded feedback, then a re-score."""
        ref = self._model(model)
        self.store.resolve(ref)
        return self._start("retrain", lambda step: self._retrain(ref, before_run, step))

    def _model(self, text: str) -> ModelRef:
        try:
            ref = ModelRef.parse(text if "/" in text else f"{_APP}/{text}")
        except ValidationError as err:
            raise ValidationError(err.message, field="model") from None
        if ref.app != _APP:
            raise ValidationError(f"expected a threat model, got {text!r}", field="model")
        return ref

    def _score(self, ref: str, spec: str, step: Callable[[str], None]) -> dict[str, Any]:
        from mlscale.apps.threat.ingest import iter_records, list_sources
        from mlscale.apps.threat.rank import rank_records, write_table

        loaded = self.store.load(ref)
        model = get_application(_APP).codec.from_artifact(loaded)
        sources = list_sources(resolve_data(spec, self.data_dir), model.kind)
        step(f"scoring {len(sources)} file(s) with {loaded.ref}")
        ranked = rank_records(model, (b for src in sources for b in iter_records(src)))
        name = f"{loaded.manifest.name}-v{loaded.manifest.version}.parquet"
        out = self.runs / name
        write_table(ranked, out)
        out.with_suffix(".json").write_text(json.dumps({"model": str(loaded.ref), "data": spec}))
        step(f"{ranked.num_rows:,} rows -> {name}")
        return {"run": name, "rows": ranked.num_rows, "model": str(loaded.ref)}

    def _retrain(self, ref: ModelRef, before_run: Path | None, step: Callable[[str], None]) -> dict[str, Any]:
        app = get_application(_APP)
        old = self.store.resolve(ref)
        family = app.family_of(old.params)
        params = params_from_dict(app.params[family], old.params)
        trainer = app.implementation("train", "local")
        verdicts = feedback_log(self.store, old.name).read()
        step(f"training {old.app}/{old.name} with {len(verdicts)} recorded verdict(s)")
        spec = str(old.extra.get("data") or "")
        if not spec:
            raise ValidationError(
                f"{old.ref} does not say what it was trained on (no data in its manifest)", field="model"
            )
        job = Job(data=spec, data_dir=self.data_dir, store=self.store, name=old.name, options={})
        with get_engine("local", threads=1) as engine:
            result = trainer.fit(engine, job, params)
            new = publish_model(
                self.store,
                app.name,
                app.codec,
                old.name,
                result.model,
                metrics=result.metrics,
                engine=engine.name,
                data_fingerprint=result.data_fingerprint,
                extra={**result.extra, "engine_info": engine.describe()},
            )
        step(f"published {new.ref}")
        scored = self._score(str(new.ref), spec, step)
        low = [v for v in verdicts if v.severity == 3]
        moved = []
        if low:
            after = best_ranks(self.runs / scored["run"], low)
            before = (
                best_ranks(before_run, low) if before_run is not None and before_run.is_file() else [None] * len(low)
            )
            for v, b, a in zip(low, before, after, strict=True):
                moved.append({"kind": v.kind, "match": dict(v.match), "before": b, "after": a})
        return {**scored, "version": new.version, "moved": moved}


class _BusyError(ValidationError):
    http_status = 409
