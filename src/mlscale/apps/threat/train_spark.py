"""The threat model on the Spark engine: words in Spark, Spark ML LDA, the same registry artifact.

Flows are read as Parquet (logs in other formats are first streamed to
Parquet with :func:`~mlscale.apps.threat.ingest.ingest`). Words are computed
in ``mapInArrow`` tasks by the very function the local engine uses
(:func:`~mlscale.apps.threat.words.flow_words`), so both engines see the same
vocabulary. IP documents are aggregated in Spark (``groupBy(ip, word)``),
turned into sparse count vectors and fitted with ``pyspark.ml.clustering.LDA``
(``optimizer="online"``, the same priors and topic count). Only the model's
numbers come back to the driver: the topic-word matrix, each IP's topic
mixture and the word and IP totals, which make the same artifact as a local
model, scored by the same code. Executors of a real cluster need ``mlscale``
installed, as for any PySpark library.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.threat.ingest import SourceFile, ingest
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA
from mlscale.engines.spark import SparkEngine, functions, spark_errors, staging_dir, to_arrow
from mlscale.errors import DataError

if TYPE_CHECKING:
    from mlscale.apps.base import Job, TrainResult
    from mlscale.apps.threat.params import LdaParams
    from mlscale.engines import Engine

__all__ = ["TRAINER", "SparkTrainer", "fit_spark", "spark_words"]

Reweight = Callable[[pa.RecordBatch | pa.Table], "npt.NDArray[np.float64] | None"]
_WORDS_SCHEMA = "ip string, word long, weight double"
#: Smallest minibatch share of the documents (Spark's default, 0.05): at most 20 iterations per pass.
_MIN_SUBSAMPLING = 0.05


def _words_fn(detector: ThreatDetector, reweight: Reweight | None, schema: pa.Schema) -> Any:
    """A mapInArrow function: (ip, word code, weight) rows for both sides of each record."""
    params = {**detector.get_params(), "top_domains": detector.top_domains, "user_domains": detector.user_domains}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        det = ThreatDetector(**params)
        for raw in batches:
            if raw.num_rows == 0:
                continue
            batch = pa.RecordBatch.from_arrays(
                [raw.column(raw.schema.get_field_index(f.name)).cast(f.type) for f in schema], schema=schema
            )
            src, src_w, dst, dst_w = det.sides(batch)
            weights = reweight(batch) if reweight is not None else None
            w = np.ones(batch.num_rows) if weights is None else np.asarray(weights, np.float64)
            if det.kind == "dns":
                ips, words, ws = src, src_w, w
            else:
                ips = pa.concat_arrays([src, dst])
                words, ws = np.concatenate([src_w, dst_w]), np.concatenate([w, w])
            yield pa.RecordBatch.from_arrays(
                [ips, pa.array(words, pa.int64()), pa.array(ws)], names=["ip", "word", "weight"]
            )

    return run


def spark_words(
    engine: SparkEngine,
    frame: Any,
    detector: ThreatDetector,
    *,
    reweight: Reweight | None = None,
) -> Any:
    """A DataFrame (ip, word, weight) of every record's words, computed in Spark tasks."""
    schema = DNS_SCHEMA if detector.kind == "dns" else FLOW_SCHEMA
    return frame.mapInArrow(_words_fn(detector, reweight, schema), _WORDS_SCHEMA)


def _stage(sources: Sequence[SourceFile], work: Path, nfdump: str) -> str:
    """Parquet for Spark: ingest output is read in place, anything else is ingested first."""
    if all(s.format == "parquet" for s in sources):
        folders = {str(s.path.parent) for s in sources}
        if len(folders) == 1:
            return folders.pop()
    for i, src in enumerate(sources):
        ingest(src.path, work / f"in-{i}", nfdump=nfdump)
    return str(work / "in-*" / ("dns" if sources[0].kind == "dns" else "flows"))


def fit_spark(
    engine: SparkEngine,
    sources: Sequence[SourceFile],
    detector: ThreatDetector,
    *,
    events: pa.Table | None = None,
    dup_factor: int = 1000,
    reweight: Reweight | None = None,
    nfdump: str = "nfdump",
) -> ThreatDetector:
    """Fit ``detector`` (its parameters) with Spark ML's LDA; returns it fitted, as a local fit would."""
    from pyspark.ml.clustering import LDA
    from pyspark.ml.linalg import SparseVector, VectorUDT
    from pyspark.sql.functions import udf

    detector._check()
    f = functions()
    spark = engine.session
    cleanup = ExitStack()
    work = cleanup.enter_context(staging_dir("mlscale-threat-spark-"))
    try:
        source = _stage(sources, work, nfdump)
        with spark_errors("computing the words"):
            frame = spark.read.parquet(source)
            words = spark_words(engine, frame, detector, reweight=reweight)
            if events is not None and events.num_rows:
                extra = spark.createDataFrame(events).withColumn("ts", f.col("ts").cast("timestamp_ntz"))
                words = words.union(
                    spark_words(engine, extra, detector).withColumn("weight", f.col("weight") * float(dup_factor))
                )
            pairs = words.groupBy("ip", "word").agg(f.sum("weight").alias("count")).cache()
            vocab = to_arrow(pairs.groupBy("word").agg(f.sum("count").alias("n")).orderBy("word"))
            vocab_codes = vocab.column("word").to_numpy().astype(np.int64)
            word_counts = np.asarray(vocab.column("n").to_numpy(), np.float64)
            if vocab_codes.size == 0:
                raise DataError("no records to learn from: the corpus is empty")
            index = spark.createDataFrame(
                pa.table({"word": vocab_codes, "widx": np.arange(vocab_codes.size, dtype=np.int32)})
            )
            n_words = int(vocab_codes.size)

            # A lambda: PySpark reads a def's type hints as a request for a pandas UDF.
            to_vector = udf(lambda idx, counts: _sparse(SparseVector, n_words, idx, counts), VectorUDT())
            docs = (
                pairs.join(f.broadcast(index), "word")
                .groupBy("ip")
                .agg(
                    f.collect_list("widx").alias("idx"),
                    f.collect_list("count").alias("counts"),
                    f.sum("count").alias("n"),
                )
                .withColumn("features", to_vector("idx", "counts"))
                .select("ip", "n", "features")
                .cache()
            )
        with spark_errors("fitting Spark ML LDA"):
            n_docs = docs.count()
            # One Spark iteration is one minibatch: `passes` sweeps of the documents, as the local engine.
            rate = min(1.0, max(detector.batch_size / max(1, n_docs), _MIN_SUBSAMPLING))
            lda = LDA(
                k=detector.topics,
                maxIter=detector.passes * int(np.ceil(1.0 / rate)),
                optimizer="online",
                docConcentration=[detector._lda().alpha] * detector.topics,
                topicConcentration=detector._lda().eta,
                learningDecay=0.7,
                learningOffset=10.0,
                subsamplingRate=rate,
                optimizeDocConcentration=False,
                seed=detector.seed,
                featuresCol="features",
            )
            model = lda.fit(docs)
            topics = model.topicsMatrix().toArray()  # V x K (online: the variational lambda)
            doc_table = to_arrow(
                model.transform(docs).select("ip", "n", _vector_to_array("topicDistribution").alias("theta"))
            )
        pairs.unpersist()
        docs.unpersist()
    finally:
        cleanup.close()
    ips = doc_table.column("ip").combine_chunks()
    theta = np.asarray(
        doc_table.column("theta").combine_chunks().flatten().to_numpy(zero_copy_only=False), np.float64
    ).reshape(len(ips), detector.topics)
    theta = theta / np.maximum(theta.sum(axis=1, keepdims=True), 1e-300)
    ip_words = np.asarray(doc_table.column("n").to_numpy(), np.float64)
    components = np.asarray(topics, np.float64).T  # K x V
    topic_word = components / components.sum(axis=1, keepdims=True)
    detector._set_state(
        ips=ips,
        vocab=vocab_codes,
        topic_word=topic_word.astype(np.float32),
        ip_topic=theta.astype(np.float32),
        ip_words=ip_words,
        word_counts=word_counts,
    )
    detector.components_ = components.astype(np.float32)
    return detector


def _sparse(vector: Any, size: int, idx: list[int], counts: list[float]) -> Any:
    order = np.argsort(idx)
    return vector(size, np.asarray(idx)[order].tolist(), np.asarray(counts, np.float64)[order].tolist())


def _vector_to_array(column: str) -> Any:
    from pyspark.ml.functions import vector_to_array

    return vector_to_array(functions().col(column))


class SparkTrainer:
    """``mlscale train threat --engine spark``: words in Spark tasks, Spark ML's online LDA, the same artifact."""

    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: LdaParams) -> TrainResult:
        from mlscale.apps.threat.app import prepare

        prep = prepare(job, params)
        start = time.perf_counter()
        detector = fit_spark(
            # Registered under "spark" only, and get_engine("spark") makes a SparkEngine: a cast, not a branch.
            cast(SparkEngine, engine),
            prep.sources,
            prep.detector,
            events=prep.events,
            dup_factor=prep.dup_factor,
            reweight=prep.reweight,
            nfdump=job.option("nfdump", "nfdump"),
        )
        return prep.result(detector, job, time.perf_counter() - start)


TRAINER = SparkTrainer()
