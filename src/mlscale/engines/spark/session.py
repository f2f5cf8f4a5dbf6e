"""The Apache Spark engine's session: the same training on ``local[*]`` or any cluster.

``SparkEngine(master="local[*]")`` is the embedded default; any master URL
works (``spark://host:7077``, ``yarn``, ``k8s://...``). A checkpoint directory
is always set, since long ALS/LDA lineages otherwise overflow the stack. Errors
from the JVM reach the user as :class:`~mlscale.errors.EngineError` carrying
the root cause, not a Java stack dump; a missing or too old Java is a
:class:`~mlscale.errors.DependencyError` that says how to install one.

>>> SparkEngine(master="local[2]").describe()["master"]
'local[2]'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from mlscale.engines.base import Engine
from mlscale.errors import ConfigError, DependencyError, EngineError, MlscaleError

__all__ = ["MIN_JAVA", "SparkEngine", "java_version", "spark_errors"]

MIN_JAVA = 17
_JAVA_FIX = "install Java 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME to one"


def java_version(java: str | None = None) -> int:
    """Major version of the ``java`` Spark will start (JAVA_HOME first, then PATH)."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home, "bin", "java")) if home else (shutil.which("java") or "")
    if not java or not Path(java).exists():
        raise DependencyError("Spark needs Java, and none was found", hint=_JAVA_FIX)
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"cannot run {java} ({exc})", hint=_JAVA_FIX) from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise DependencyError(f"cannot tell the version of {java}", hint=_JAVA_FIX)
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8" means Java 8


def _root_cause(exc: BaseException) -> str:
    """The innermost Java cause of a Py4J error, as 'Class: message'."""
    java_exc = getattr(exc, "java_exception", None)
    if java_exc is not None:
        try:
            cause = java_exc
            while cause.getCause() is not None:
                cause = cause.getCause()
            return f"{cause.getClass().getSimpleName()}: {cause.getMessage()}"
        except Exception:
            pass
    text = str(exc).strip()
    if "Traceback (most recent call last)" in text:
        # A Python worker failed: its last exception line is the cause.
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("SQLSTATE")]
        errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception)\b", ln)]
        return (errors[-1] if errors else lines[-1])[:500]
    caused = re.findall(r"Caused by: ([\w.$]+(?:Exception|Error)[^\n]*)", text)
    line = caused[-1] if caused else text.splitlines()[0] if text else type(exc).__name__
    return line[:500]


@contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Turn JVM/Spark failures inside the block into an EngineError with the root cause."""
    try:
        yield
    except MlscaleError:
        raise
    except Exception as exc:
        names = {c.__name__ for c in type(exc).__mro__}
        if names & {
            "Py4JJavaError",
            "Py4JError",
            "PySparkException",
            "CapturedException",
            "AnalysisException",
        }:
            raise EngineError(f"Spark failed while {what}: {_root_cause(exc)}") from None
        raise


class SparkEngine(Engine):
    """Train on Apache Spark. The session starts on first use of :attr:`session`."""

    name: ClassVar[str] = "spark"

    def __init__(
        self,
        master: str | None = None,
        conf: Mapping[str, str] | None = None,
        app_name: str = "mlscale",
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.master = master or "local[*]"
        self.conf = dict(conf or {})
        self.app_name = app_name
        self._checkpoint_given = checkpoint_dir is not None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._session: Any = None
        self._owned = False

    @property
    def is_local(self) -> bool:
        return self.master.startswith("local")

    @property
    def threads(self) -> int:
        m = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", self.master)
        if m and m.group(1) != "*":
            return int(m.group(1))
        if self._session is not None:
            return int(self._session.sparkContext.defaultParallelism)
        return os.cpu_count() or 1

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "master": self.master,
            "conf": {k: v for k, v in self.conf.items() if "secret" not in k.lower()},
        }

    @property
    def session(self) -> Any:
        """The SparkSession (created, or reused when one is already running in this process)."""
        if self._session is None:
            self._session = self._start()
        return self._session

    def _start(self) -> Any:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(
                "the spark engine needs pyspark", hint="install it with `pip install 'mlscale[spark]'`"
            ) from None
        version = java_version()
        if version < MIN_JAVA:
            raise DependencyError(f"Spark needs Java {MIN_JAVA}+, found Java {version}", hint=_JAVA_FIX)
        if self.is_local:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
            # Python workers must run this interpreter (its packages), not whatever `python3` is on PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        log_conf = resources.files("mlscale.engines.spark").joinpath("log4j2.properties")
        builder = (
            SparkSession.builder.master(self.master)
            .appName(self.app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf}")
        )
        if self.is_local:
            builder = builder.config("spark.sql.shuffle.partitions", str(max(2 * self.threads, 2)))
        for key, value in self.conf.items():
            builder = builder.config(key, value)
        with spark_errors(f"starting a session on {self.master}"):
            # A session already running in this process (a notebook's, a test run's) is reused and left
            # running on close; only a session this engine started is stopped by it.
            self._owned = SparkSession.getActiveSession() is None
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
            if self.checkpoint_dir is None:
                self.checkpoint_dir = Path(tempfile.mkdtemp(prefix="mlscale-spark-ckpt-"))
            session.sparkContext.setCheckpointDir(str(self.checkpoint_dir))
        return session

    def close(self) -> None:
        """Stop the session this engine started and remove its temporary checkpoints."""
        if self._session is not None:
            if self._owned:
                with spark_errors("stopping the session"):
                    self._session.stop()
            self._session = None
        if self.checkpoint_dir is not None and not self._checkpoint_given:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            self.checkpoint_dir = None
