#!/usr/bin/env python3
"""Fetch, start, stop and probe a single-node Apache Kafka broker for development and tests.

Run with the project's virtualenv (scripts/setup.sh makes it): readiness is asked of the
broker through confluent_kafka, the client the project itself uses. Starting needs Java
17+ and Maven besides.

    .venv/bin/python scripts/kafka.py fetch [--version V]
    .venv/bin/python scripts/kafka.py start [--port 19092] [--controller-port 19093] [--dir DIR]
                                            [--keep]   (start on the storage left, not afresh)
    .venv/bin/python scripts/kafka.py status [--dir DIR]
    .venv/bin/python scripts/kafka.py stop [--dir DIR]

`start` prints `bootstrap=127.0.0.1:PORT` once the broker answers a metadata request
listing itself, i.e. when clients can really produce and consume.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

try:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
except ImportError:  # run by the system Python: say how to run it instead
    sys.exit(
        "kafka.py: confluent_kafka is missing; run it with the project's virtualenv: "
        ".venv/bin/python scripts/kafka.py (scripts/setup.sh creates .venv)"
    )

DEFAULT_VERSION = "4.4.0"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".kafka"
MAIN_CLASS = "kafka.Kafka"
MARKER = ".movierec-kafka"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.movierec</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""

# Kafka 4 logs through log4j2; everything goes to one rolling file so the terminal stays quiet.
LOG4J2 = """status = error
name = movierec-kafka
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Development broker: data is disposable, keep the disk bounded.
log.retention.bytes=4294967296
message.max.bytes=8388608
"""


def libs_dir(version: str) -> Path:
    base = os.environ.get("MOVIEREC_CACHE") or str(Path.home() / ".cache" / "movierec")
    return Path(base) / "kafka" / version / "libs"


def fetch(version: str) -> Path:
    """Download the broker jars once; a marker file says the copy completed."""
    libs = libs_dir(version)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        sys.exit("kafka.py: Maven (mvn) is required to fetch the Kafka jars")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent) as work:
        (Path(work) / "pom.xml").write_text(POM.format(version=version))
        staged = Path(work) / "libs"
        cmd = ["mvn", "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={staged}"]
        print(f"fetching Apache Kafka {version} jars from Maven Central ...", file=sys.stderr)
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(staged.glob("kafka_2.13-*.jar")):
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            sys.exit(f"kafka.py: fetching Kafka {version} failed")
        _add_slf4j_binding(work, staged)
        # Rename into place so a concurrent or interrupted fetch never leaves a half-filled cache.
        shutil.rmtree(libs, ignore_errors=True)
        staged.rename(libs)
    marker.write_text(version + "\n")
    return libs


def _add_slf4j_binding(work: str, staged: Path) -> None:
    """Add the slf4j-to-log4j2 bridge the Kafka distribution ships but the Maven poms omit.

    Without it the broker's own (slf4j) logging is silently dropped and SLF4J complains on
    stderr. The bridge must match log4j-core's version exactly, hence this second step.
    """
    if any(staged.glob("log4j-slf4j*-impl-*.jar")):
        return
    cores = sorted(staged.glob("log4j-core-*.jar"))
    if not cores:
        return
    log4j = cores[-1].name.removeprefix("log4j-core-").removesuffix(".jar")
    slf4j2 = any(staged.glob("slf4j-api-2*.jar"))
    bridge = "log4j-slf4j2-impl" if slf4j2 else "log4j-slf4j-impl"
    artifact = f"-Dartifact=org.apache.logging.log4j:{bridge}:{log4j}"
    cmd = ["mvn", "-q", "-B", "dependency:copy", artifact, f"-DoutputDirectory={staged}"]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        sys.exit(f"kafka.py: fetching {bridge} {log4j} failed")


# --- readiness probe ---------------------------------------------------------------------------


def broker_ready(host: str, port: int, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request that lists a broker.

    An open port is not enough: the listener accepts connections before the broker has
    caught up with the metadata log and been unfenced, and until then clients fail.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": f"{host}:{port}",
            # A broker still starting refuses connections: expected here, not worth a log line.
            "log_level": 0,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return len(metadata.brokers) > 0


# --- process management ----------------------------------------------------------------------


def _state(data_dir: Path) -> dict[str, int] | None:
    try:
        state: dict[str, int] = json.loads((data_dir / "broker.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def _alive(pid: int) -> bool:
    """True only for a live Kafka JVM: a pid file can outlive its process and the pid be reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the signal probe
    return MAIN_CLASS.encode() in cmdline.split(b"\0")


def log_tail(data_dir: Path, lines: int = 40) -> str:
    parts = []
    for name in ("broker.out", "logs/server.log"):
        path = data_dir / name
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no broker log in {data_dir})"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    state = _state(data_dir)
    if state and _alive(state["pid"]):
        if state["port"] == args.port and broker_ready("127.0.0.1", args.port):
            print(f"bootstrap=127.0.0.1:{args.port}")
            return 0
        stop_broker(data_dir)
    for port in (args.port, args.controller_port):
        if not _port_free(port):
            print(f"kafka.py: port {port} is already in use", file=sys.stderr)
            return 1
    libs = fetch(args.version)
    java = shutil.which("java")
    if java is None:
        print("kafka.py: java (17 or newer) is required", file=sys.stderr)
        return 1

    # Fresh storage on every start: tests and simulations want a clean, known broker. Only a
    # directory this script made is wiped, so a mistyped --dir cannot delete anything else.
    ours = any((data_dir / name).exists() for name in (MARKER, "broker.out"))
    if data_dir.exists() and any(data_dir.iterdir()) and not ours:
        print(f"kafka.py: {data_dir} is not empty and not a broker dir; refusing", file=sys.stderr)
        return 1
    # --keep: a broker whose topics must outlive it (the main job's log) starts on the
    # storage it had; a new directory is formatted as ever.
    keep = args.keep and ours and (data_dir / "data" / "meta.properties").is_file()
    if not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
        (data_dir / "logs").mkdir(parents=True)
        (data_dir / MARKER).write_text(
            "created by scripts/kafka.py; wiped on every start without --keep\n"
        )
        (data_dir / ".gitignore").write_text("*\n")  # keeps the data out of git wherever DIR is
    (data_dir / "log4j2.properties").write_text(LOG4J2)
    props = data_dir / "server.properties"
    props.write_text(
        SERVER_PROPERTIES.format(port=args.port, cport=args.controller_port, data=data_dir / "data")
    )
    classpath = str(libs / "*")  # the JVM expands the wildcard itself
    jvm = [
        java,
        f"-Xmx{args.heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={data_dir / 'logs'}",
        "-cp",
        classpath,
    ]
    if not keep:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        fmt = [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)]
        done = subprocess.run(fmt, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            print("kafka.py: formatting the storage failed", file=sys.stderr)
            return 1

    with open(data_dir / "broker.out", "ab") as out:
        # A session of its own: Ctrl-C in the caller's terminal does not reach the broker.
        proc = subprocess.Popen(
            [*jvm, MAIN_CLASS, str(props)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (data_dir / "broker.pid").write_text(f"{proc.pid}\n")
    state = {"pid": proc.pid, "port": args.port, "controller_port": args.controller_port}
    (data_dir / "broker.json").write_text(json.dumps(state) + "\n")

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(log_tail(data_dir), file=sys.stderr)
            print(f"kafka.py: broker exited with code {proc.returncode}", file=sys.stderr)
            return 1
        if broker_ready("127.0.0.1", args.port):
            print(f"bootstrap=127.0.0.1:{args.port}")
            return 0
        time.sleep(0.25)
    print(log_tail(data_dir), file=sys.stderr)
    print(f"kafka.py: broker not ready after {args.timeout:.0f} s; stopping it", file=sys.stderr)
    stop_broker(data_dir)
    return 1


def stop_broker(data_dir: Path, grace: float = 30.0) -> None:
    """SIGTERM (Kafka then shuts down cleanly), SIGKILL after grace seconds; idempotent."""
    state = _state(data_dir)
    if state is not None and _alive(state["pid"]):
        pid = state["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
    for name in ("broker.pid", "broker.json"):
        (data_dir / name).unlink(missing_ok=True)


def status(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir.resolve()
    state = _state(data_dir)
    if state is None or not _alive(state["pid"]):
        print("stopped")
        return 1
    if not broker_ready("127.0.0.1", state["port"]):
        print(f"starting (pid {state['pid']}, not ready)")
        return 1
    print(f"bootstrap=127.0.0.1:{state['port']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download the broker jars into the cache")
    p_start = sub.add_parser("start", help="start a fresh single-node broker in the background")
    p_stop = sub.add_parser("stop", help="stop the broker (idempotent)")
    p_status = sub.add_parser("status", help="exit 0 when the broker is running and ready")
    for p in (p_fetch, p_start):
        p.add_argument("--version", default=DEFAULT_VERSION)
    for p in (p_start, p_stop, p_status):
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    p_start.add_argument("--port", type=int, default=19092)
    p_start.add_argument("--controller-port", type=int, default=19093)
    p_start.add_argument("--timeout", type=float, default=90.0)
    p_start.add_argument("--heap", default="768m")
    p_start.add_argument(
        "--keep", action="store_true", help="start on the storage a previous start left"
    )
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(f"libs={fetch(args.version)}")
        return 0
    if args.command == "start":
        return start(args)
    if args.command == "stop":
        stop_broker(args.dir.resolve())
        print("stopped")
        return 0
    return status(args)


if __name__ == "__main__":
    sys.exit(main())
