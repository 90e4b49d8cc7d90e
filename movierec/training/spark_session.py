"""A SparkSession for the Spark training engine: its settings, its Java, its quiet logs.

Spark runs in a JVM that pyspark starts beside Python. Which Java: JAVA_HOME when it is
set (it must hold bin/java), else `java` on PATH, else a Java 17 under /usr/lib/jvm;
Spark 3.5 runs on Java 8, 11 and 17 only, and any other (or none) is a clear error naming
JAVA_HOME. Everything Spark writes (shuffle files, spilled blocks, the exchange files of
movierec/training/spark_als.py, its logs' configuration) lives in one temporary directory
that is removed when the session ends. Logs are WARN and up, without the warnings every
local run prints (no native Hadoop, no native BLAS), which say nothing about our run.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from movierec.config import SettingsGroup

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SUPPORTED_JAVA = (8, 11, 17)  # Spark 3.5's supported Java releases
VECTOR_API_JAVA = 16  # the first Java with jdk.incubator.vector
FALLBACK_JAVA = "/usr/lib/jvm/java-17-openjdk*"

# WARN and up, but not the warnings every local run prints about missing native code, nor
# one line per ALS iteration about its growing task (its lineage until the checkpoint).
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
logger.blas.name = dev.ludovic.netlib
logger.blas.level = error
logger.conf.name = org.apache.spark.SparkConf
logger.conf.level = error
logger.dag.name = org.apache.spark.scheduler.DAGScheduler
logger.dag.level = error
"""


class SparkConfig(SettingsGroup):
    """Where the Spark engine runs: the training's `spark` settings."""

    master: str = Field(
        "local[*]",
        min_length=1,
        description="Spark master URL: local[N] (N cores in this process, * all) or a "
        "cluster's spark://HOST:PORT",
    )
    driver_memory: str = Field(
        "4g",
        pattern=r"^\d+[kmgt]$",
        description="heap of Spark's driver JVM (in local mode: all of Spark's memory)",
    )
    java_options: str | None = Field(
        None,
        description="more options of the driver JVM (e.g. -XX:TieredStopAtLevel=1: a "
        "quicker start for small runs, slower on large ones)",
    )
    scratch: str | None = Field(
        None,
        description="directory for the files Spark exchanges with Python; every executor "
        "must reach it (a shared mount on a cluster); unset: a temporary directory",
    )


@dataclass
class Spark:
    """A running session and the directory its exchange files go in."""

    session: SparkSession
    scratch: Path
    master: str

    @property
    def version(self) -> str:
        return str(self.session.version)

    @property
    def parallelism(self) -> int:
        return int(self.session.sparkContext.defaultParallelism)


def java_home() -> str:
    """The Java home Spark will run on; ValueError, naming JAVA_HOME, when there is none."""
    return java()[0]


def java() -> tuple[str, int]:
    """(Java home, major release) Spark will run on; ValueError as java_home's."""
    configured = os.environ.get("JAVA_HOME", "").strip()
    if configured:
        java = Path(configured) / "bin" / "java"
        if not java.exists():
            raise ValueError(f"JAVA_HOME={configured} holds no bin/java: set it to a Java 17")
        return _checked(configured, str(java))
    on_path = shutil.which("java")
    if on_path:
        return _checked(str(Path(os.path.realpath(on_path)).parent.parent), on_path)
    for home in sorted(glob.glob(FALLBACK_JAVA)):
        if (Path(home) / "bin" / "java").exists():
            return _checked(home, str(Path(home) / "bin" / "java"))
    raise ValueError(
        "the Spark engine needs Java (8, 11 or 17) and none was found: set JAVA_HOME "
        "to a Java 17 (e.g. /usr/lib/jvm/java-17-openjdk-amd64) or put java on PATH"
    )


def _checked(home: str, binary: str) -> tuple[str, int]:
    shown = subprocess.run([binary, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if not found:
        raise ValueError(f"{binary} -version says no version: set JAVA_HOME to a Java 17")
    major = int(found.group(2)) if found.group(1) == "1" else int(found.group(1))
    if major not in SUPPORTED_JAVA:
        raise ValueError(
            f"{binary} is Java {major}; Spark 3.5 runs on Java 8, 11 or 17: set JAVA_HOME "
            "to one (e.g. /usr/lib/jvm/java-17-openjdk-amd64)"
        )
    return home, major


@contextlib.contextmanager
def spark_session(config: SparkConfig | None = None) -> Iterator[Spark]:
    """A SparkSession on config's master, stopped (and its files removed) on exit.

    A process holds one Spark context: when one is already running here (a caller's),
    it is used as it is and left running, and a different master is an error."""
    from pyspark.sql import SparkSession

    cfg = config or SparkConfig()
    with contextlib.ExitStack() as stack:
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="movierec-spark-")))
        scratch = Path(cfg.scratch) if cfg.scratch else temp / "exchange"
        scratch.mkdir(parents=True, exist_ok=True)
        running = SparkSession.getActiveSession()
        if running is not None:
            master = running.sparkContext.master
            if master != cfg.master:
                raise ValueError(
                    f"a Spark session on {master} already runs in this process; "
                    f"--spark-master {cfg.master} cannot start another"
                )
            yield Spark(running, scratch, master)
            return
        home, release = java()
        os.environ["JAVA_HOME"] = home
        (temp / "log4j2.properties").write_text(LOG4J2)
        java_options = (
            f"-Djava.io.tmpdir={temp} -Dlog4j.configurationFile=file:{temp / 'log4j2.properties'}"
            f" {cfg.java_options or ''}"
        )
        if release >= VECTOR_API_JAVA:
            # MLlib's BLAS then runs on the JVM's vector instructions (native BLAS is not
            # bundled): ALS's normal equations are its hot loop. The JVM says so once.
            java_options += " --add-modules=jdk.incubator.vector"
        builder = SparkSession.builder.master(cfg.master).appName("movierec-train")
        if cfg.master.startswith("local"):
            # Nothing outside this process talks to a local driver: loopback, and no
            # warning that the host name resolves to it.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        session = (
            builder.config("spark.driver.memory", cfg.driver_memory)
            .config("spark.driver.extraJavaOptions", java_options)
            .config("spark.executor.extraJavaOptions", "-Dlog4j2.level=warn")
            .config("spark.local.dir", str(temp / "local"))
            .config("spark.sql.warehouse.dir", str(temp / "warehouse"))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # A few large partitions: ALS's blocks are set from the parallelism, and the
            # default 200 shuffle partitions only add scheduling on a small run.
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
        stack.callback(session.stop)
        log.info("spark %s on %s, scratch %s", session.version, cfg.master, scratch)
        yield Spark(session, scratch, cfg.master)
