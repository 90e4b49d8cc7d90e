"""The movierec image: a non-root service answering /recommend on the host, configured from
the environment, healthy once it serves a model, serving a read-only models folder, stopped
cleanly."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

from tests.deploy.conftest import podman
from tests.support.ports import free_port
from tests.support.waiting import wait_until


def answers(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/recommend/1", timeout=2) as r:
            return bytes(r.read()) if r.status == 200 else None
    except OSError:
        return None


def test_the_image_is_built_as_the_docs_say(movierec_image: str) -> None:
    image = json.loads(podman("image", "inspect", movierec_image).stdout)[0]
    config = image["Config"]
    assert config["User"] == "movierec"
    assert set(config["ExposedPorts"]) == {"8082/tcp"}
    assert set(config["Volumes"]) == {"/data"}
    assert config["Entrypoint"] == ["movierec"]
    assert config["Cmd"] == ["serve", "--models", "/data/models", "--port", "8082"]
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])


def test_the_service_answers_from_a_container(
    movierec_image: str, trained_models: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    # The container's user owns its data, as it would on a volume the trainer wrote.
    for path in [models, *models.rglob("*")]:
        os.chown(path, 10001, 10001)
    port = free_port()
    name = f"movierec-test-{port}"
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-e", f"MOVIEREC_SERVE_PORT={port}", "-v", f"{models}:/data/models",
        movierec_image, "serve", "--models", "/data/models",
    )  # fmt: skip
    try:
        wait_until(lambda: answers(port) is not None, timeout=120, what="an answer")
        body = answers(port)
        assert body is not None and len(body.decode().strip().split(",")) == 20
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
        # SIGTERM: in-flight requests finish, the answer log is flushed, exit code 0.
        podman("stop", "--time", "20", name)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert state == "0"
        assert any((models / "answers").glob("answers-*.jsonl"))
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def test_a_read_only_models_folder_is_served_and_the_unwritable_log_reported(
    movierec_image: str, trained_models: Path, tmp_path: Path
) -> None:
    # The models as a trainer on the host leaves them (its user's, readable by all),
    # mounted read-only: the service answers from them, and says its answer log cannot be
    # written there.
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    models.chmod(0o755)  # pytest's folders are its user's alone; a trainer's are not
    assert all(p.stat().st_uid != 10001 for p in [models, *models.rglob("*")])
    port = free_port()
    name = f"movierec-test-ro-{port}"
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-v", f"{models}:/data/models:ro",
        movierec_image, "serve", "--models", "/data/models", "--port", str(port),
    )  # fmt: skip
    try:
        wait_until(lambda: answers(port) is not None, timeout=120, what="an answer")
        body = answers(port)
        assert body is not None and len(body.decode().strip().split(",")) == 20
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            log = json.loads(r.read())["answer_log"]
        assert log["writing"] is False and "/data/models/answers" in log["error"]
        assert "answers go on but are not recorded" in podman("logs", name).stderr
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def test_a_bad_setting_in_the_environment_stops_it_with_exit_2(movierec_image: str) -> None:
    done = podman(
        "run", "--rm", "--network", "host", "-e", "MOVIEREC_SERVE_PORT=eighty",
        movierec_image, "serve", "--models", "/data/models", check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "MOVIEREC_SERVE_PORT" in done.stderr
