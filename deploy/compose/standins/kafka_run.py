"""A single Kafka node configured the way the public apache/kafka image is: every KAFKA_*
variable is a server property (KAFKA_LOG_DIRS is log.dirs; `__` stands for `_` and `___`
for `-`), CLUSTER_ID formats empty storage once, and the broker runs in the foreground."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

LIBS = "/opt/kafka/libs/*"
# Variables the public image reads for the JVM, not the broker.
NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}
CONFIG = Path("/tmp/kafka")
LOG4J2 = """status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def property_name(variable: str) -> str:
    parts = re.split(r"(___|__|_)", variable.removeprefix("KAFKA_").lower())
    return "".join({"___": "-", "__": "_", "_": "."}.get(p, p) for p in parts)


def main() -> int:
    props = {
        property_name(k): v
        for k, v in os.environ.items()
        if k.startswith("KAFKA_") and k not in NOT_PROPERTIES
    }
    if "log.dirs" not in props:
        props["log.dirs"] = "/var/lib/kafka/data"
    CONFIG.mkdir(parents=True, exist_ok=True)
    server = CONFIG / "server.properties"
    server.write_text("".join(f"{k}={v}\n" for k, v in sorted(props.items())))
    (CONFIG / "log4j2.properties").write_text(LOG4J2)
    java = ["java", f"-Dlog4j2.configurationFile={CONFIG / 'log4j2.properties'}", "-cp", LIBS]
    first_dir = Path(props["log.dirs"].split(",")[0])
    if not (first_dir / "meta.properties").exists():
        cluster = os.environ.get("CLUSTER_ID")
        if not cluster:
            print("kafka: CLUSTER_ID is required to format new storage", file=sys.stderr)
            return 2
        fmt = [*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(server)]
        subprocess.run(fmt, check=True)
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m").split()
    os.execvp("java", [*java, *heap, "kafka.Kafka", str(server)])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
