"""Image recognition as an mlscale application: ``mlscale train|evaluate vision`` and ``mlscale vision predict``.

A thin adapter over the contract-independent modules (``params``, ``data``, ``train_local``,
``train_spark``, ``codec``, ``predictor``, ``scenario``, ``predict``): it turns flags into
:class:`~mlscale.apps.vision.params.VisionParams` (the flags are generated from the
dataclass, so each default lives there alone) and calls them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlscale._cli import _common
from mlscale.apps.base import Application
from mlscale.apps.vision.codec import APP
from mlscale.apps.vision.params import ON_ERROR, VisionParams
from mlscale.errors import DatasetNotFoundError, ValidationError
from mlscale.registry import LoadedModel, ModelRef, Store, open_store

if TYPE_CHECKING:
    from mlscale.apps.vision.data import ImageDataset
    from mlscale.apps.vision.model import VisionModel
    from mlscale.loadtest.scenario import Scenario
    from mlscale.serve.predictor import Predictor

__all__ = ["VisionApp", "add_params_arguments", "params_from_args"]

_DEFAULT_DATA = "fashion-mnist"


def add_params_arguments(parser: argparse.ArgumentParser, cls: type[VisionParams] = VisionParams) -> None:
    """One flag per field of ``cls`` (``--batch-size``...), with its help and default."""
    group = parser.add_argument_group("model and training")
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: %(default)s)"
        if f.type in (bool, "bool"):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        elif f.name == "on_error":
            group.add_argument(flag, choices=ON_ERROR, default=f.default, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type) if isinstance(f.type, str) else f.type.__name__]
            group.add_argument(flag, type=kind, default=f.default, help=help_text)


def params_from_args(args: argparse.Namespace, cls: type[VisionParams] = VisionParams) -> VisionParams:
    """The inverse of :func:`add_params_arguments`, validated (a bad value names its flag)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    try:
        return cls(**values).validate()
    except ValidationError as err:
        raise ValidationError(
            err.message.split(": ", 1)[-1], field="--" + (err.field or "").replace("_", "-")
        ) from None


def _model_ref(text: str) -> ModelRef:
    """Accept ``NAME``, ``NAME@alias`` or ``vision/NAME[@sel]``."""
    ref = ModelRef.parse(text if "/" in text else f"{APP}/{text}")
    if ref.app != APP:
        raise ValidationError(f"{text!r} is not a vision model (expected {APP}/NAME)", field="--model")
    return ref


def _add_engine_args(p: argparse.ArgumentParser, what: str) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "spark"), default="local", help=f"where {what} runs (default: local)")
    g.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    g.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)")


def _spark(args: argparse.Namespace) -> Any:
    from mlscale.engines import get_engine

    conf = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"expected KEY=VALUE, got {item!r}", field="--spark-conf")
        conf[key] = value
    return get_engine("spark", master=args.spark_master, conf=conf)


class VisionApp(Application):
    """Image classification with a small CNN (PyTorch to train, ONNX Runtime to serve)."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "image classification (PyTorch CNN; ONNX Runtime serving)"
    verbs: ClassVar[frozenset[str]] = frozenset({"train", "evaluate"})

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        if verb == "train":
            parser.add_argument(
                "--data",
                default=_DEFAULT_DATA,
                help="catalogue data set (fashion-mnist), folder of class sub-folders, or path,label table "
                "(default: %(default)s)",
            )
            parser.add_argument("--name", required=True, help="model name in the registry")
            parser.add_argument(
                "--test-data", default=None, help="labelled test images (default: the data's own test split, if any)"
            )
            parser.add_argument("--processes", type=int, default=2, help="DDP processes with --engine spark")
            add_params_arguments(parser)
            _add_engine_args(parser, "training")
        elif verb == "evaluate":
            parser.add_argument("--model", required=True, help="NAME or vision/NAME[@alias|version]")
            parser.add_argument("--data", default=_DEFAULT_DATA, help="labelled images (default: %(default)s)")
            parser.add_argument("--split", choices=("train", "test"), default="test", help="(default: test)")
            parser.add_argument("--on-error", choices=ON_ERROR, default="raise", help="unreadable images")
        _common.add_data_dir_arg(parser)
        _common.add_registry_arg(parser)

    def add_commands(self, sub: Any) -> None:
        p = sub.add_parser("vision", help="image classification: batch inference", description=self.summary)
        group = p.add_subparsers(dest="vision_command", metavar="COMMAND", required=True)
        pr = group.add_parser(
            "predict",
            help="classify every image of a folder or path table into Parquet",
            description="One row per image: path, label, probability, the top-k labels and probabilities, and "
            "the true label when the layout gives one. Locally in batches, or on Spark with predict_batch_udf.",
        )
        pr.add_argument("--model", required=True, help="NAME or vision/NAME[@alias|version]")
        pr.add_argument("--data", required=True, help="a folder of images (class sub-folders optional) or a table")
        pr.add_argument("--out", type=Path, required=True, help="output Parquet (a folder with --engine spark)")
        pr.add_argument("--k", type=int, default=1, help="labels per image (default: 1)")
        pr.add_argument("--batch-size", type=int, default=256, help="images per model call (default: 256)")
        pr.add_argument("--on-error", choices=ON_ERROR, default="raise", help="unreadable images (default: raise)")
        _add_engine_args(pr, "inference")
        _common.add_registry_arg(pr)
        pr.set_defaults(handler=self._predict_cmd)

    def predictor(self, model: LoadedModel) -> Predictor:
        """Serve a vision model: ``classify`` with ONNX Runtime."""
        from mlscale.apps.vision.codec import read_artifact
        from mlscale.apps.vision.predictor import OnnxClassifier, VisionPredictor

        art = read_artifact(model)
        return VisionPredictor(
            OnnxClassifier(art.onnx, art.meta), model_ref=str(model.ref.model), version=model.manifest.version
        )

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        """Load-test ``classify`` with real images (default: the Fashion-MNIST test split)."""
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.scenario import VisionScenario

        return VisionScenario(open_dataset(data or _DEFAULT_DATA, data_dir=data_dir, split="test"), model, mix)

    def run(self, verb: str, args: argparse.Namespace) -> int:
        return {"train": self._train, "evaluate": self._evaluate}[verb](args)

    # -- verbs -----------------------------------------------------------------------------------

    def _store(self, args: argparse.Namespace) -> Store:
        return open_store(_common.registry_root(args))

    def _train(self, args: argparse.Namespace) -> int:
        from mlscale.apps.vision.codec import publish
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.train_local import evaluate, fit

        ModelRef.parse(f"{APP}/{args.name}")  # a bad name fails now, not after training
        params = params_from_args(args)
        data_dir = _common.data_dir(args)
        dataset = open_dataset(args.data, data_dir=data_dir, on_error=params.on_error)
        store = self._store(args)
        start = time.perf_counter()
        if args.engine == "spark":
            from mlscale.apps.vision.train_spark import fit_distributed

            if args.processes < 1:
                raise ValidationError(f"expected >= 1, got {args.processes}", field="--processes")
            with _spark(args) as engine:
                model = fit_distributed(
                    args.data,
                    params,
                    data_dir=data_dir,
                    num_processes=args.processes,
                    local_mode=engine.is_local,
                    session=engine.session,
                )
                engine_info = {**engine.describe(), "processes": args.processes}
        else:
            model = fit(dataset, params)
            engine_info = {"engine": "local"}
        took = time.perf_counter() - start
        metrics = {"train_seconds": round(took, 3), "epochs": float(len(model.history))}
        if model.history:
            metrics["val_accuracy"] = max(h["val_accuracy"] for h in model.history)
        test = self._test_set(args, data_dir, model)
        if test is not None:
            scores = evaluate(model, test)
            metrics["test_accuracy"] = scores["accuracy"]
            metrics["test_loss"] = scores["loss"]
        manifest = publish(
            store,
            args.name,
            model,
            metrics=metrics,
            engine=args.engine,
            data_fingerprint=dataset.fingerprint(),
            extra={
                "data": str(args.data),
                "images": len(dataset),
                "skipped": model.skipped,
                "engine_info": engine_info,
            },
        )
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "accuracy" in k)
        skipped = f", {model.skipped} bad file(s) skipped" if model.skipped else ""
        print(
            f"trained on {len(dataset):,} images ({len(model.history)} epochs, {took:.1f}s{skipped}): {shown}; "
            f"published {manifest.ref}"
        )
        return 0

    @staticmethod
    def _test_set(args: argparse.Namespace, data_dir: Path, model: VisionModel) -> ImageDataset | None:
        from mlscale.apps.vision.data import open_dataset

        spec = args.test_data or args.data
        try:
            return open_dataset(
                spec, data_dir=data_dir, split="test", labels=model.meta.labels, on_error=model.params.on_error
            )
        except DatasetNotFoundError:
            if args.test_data:
                raise
            return None

    def _evaluate(self, args: argparse.Namespace) -> int:
        from mlscale.apps.vision.codec import decode
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.train_local import evaluate

        loaded = self._store(args).load(_model_ref(args.model))
        model = decode(loaded)
        m = model.meta
        data = open_dataset(
            args.data,
            data_dir=_common.data_dir(args),
            split=args.split,
            labels=m.labels,
            on_error=args.on_error,
            shape=(m.height, m.width, m.channels),
        )
        scores = evaluate(model, data)
        skipped = f" ({int(scores['skipped'])} bad file(s) skipped)" if scores["skipped"] else ""
        print(
            f"{loaded.ref}: accuracy {scores['accuracy']:.4f}, loss {scores['loss']:.4f} on "
            f"{int(scores['images']):,} images of {data.where}{skipped}"
        )
        return 0

    def _predict_cmd(self, args: argparse.Namespace) -> int:
        from mlscale.apps.vision.codec import read_artifact
        from mlscale.apps.vision.predict import predict_local, predict_spark

        art = read_artifact(self._store(args).load(_model_ref(args.model)))
        if args.engine == "spark":
            with _spark(args) as engine:
                report = predict_spark(
                    engine.session,
                    art.onnx,
                    art.meta,
                    args.data,
                    args.out,
                    batch_size=args.batch_size,
                    k=args.k,
                    on_error=args.on_error,
                )
        else:
            report = predict_local(
                art.onnx, art.meta, args.data, args.out, batch_size=args.batch_size, k=args.k, on_error=args.on_error
            )
        for path, reason in report.bad_files[:10]:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        skipped = f", {report.skipped} bad file(s) skipped" if report.skipped else ""
        print(
            f"classified {report.images:,} images in {report.seconds:.1f}s "
            f"({report.images_per_second:,.0f}/s{skipped}): {report.out}"
        )
        return 0
