"""The model registry: immutable, versioned artifacts with their provenance, and which
version is in production.

    MODELS/registry.json                 versions, the production version, its history
    MODELS/versions/<version>/model/     what the model saved
    MODELS/versions/<version>/provenance.json

A version directory is complete before it appears (written aside, then renamed), and is
never changed afterwards. registry.json is replaced atomically under a lock, so a reader
(the serving layer watching for a new production version) never sees half of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from movierec.models.base import Recommender, TrainingData
from movierec.registry.releases import ReleaseRecord, now, previous, records
from movierec.store.events import atomic_write

LIBRARIES = ("numpy", "scipy", "implicit", "optuna", "pyarrow", "duckdb", "numba", "movierec")


class Registry:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.path = self.root / "registry.json"
        self.versions_dir = self.root / "versions"

    # ---- reading ----------------------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"production": None, "versions": [], "history": []}
        return json.loads(self.path.read_text())

    def production(self) -> str | None:
        return self.read()["production"]

    def model_dir(self, version: str) -> Path:
        return self.versions_dir / version / "model"

    def provenance(self, version: str) -> dict[str, Any]:
        return json.loads((self.versions_dir / version / "provenance.json").read_text())

    def latest_by_model(self) -> dict[str, str]:
        """The newest version of each model kind."""
        latest: dict[str, str] = {}
        for entry in self.read()["versions"]:
            latest[entry["model"]] = entry["version"]
        return latest

    # ---- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "registry.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            yield state
            atomic_write(self.path, json.dumps(state, indent=2).encode())

    def add(self, model: Recommender, provenance: dict[str, Any]) -> str:
        """Save model as a new immutable version; returns its id."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        version = f"{stamp}-{model.name}-{secrets.token_hex(3)}"
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        staging = self.versions_dir / f".staging-{version}"
        (staging / "model").mkdir(parents=True)
        try:
            model.save(staging / "model")
            record = {"version": version, "model": model.name, **provenance}
            (staging / "provenance.json").write_text(json.dumps(record, indent=2, default=str))
            os.replace(staging, self.versions_dir / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with self._locked() as state:
            state["versions"].append(
                {
                    "version": version,
                    "model": model.name,
                    "created": stamp,
                    "metrics": provenance.get("offline_metrics", {}),
                }
            )
        return version

    def keep(
        self, reason: str, evidence: dict[str, Any] | None = None, decided_by: str = "train"
    ) -> None:
        """Record a training that promoted nothing (and why); production stays as it is."""
        with self._locked() as state:
            production = state["production"]
            self._record(state, production, production, "keep", decided_by, reason, evidence)

    def hold(
        self,
        decision: str,
        candidate: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        decided_by: str = "canary",
    ) -> ReleaseRecord:
        """Record a decision about `candidate` that leaves production where it is: a
        `canary` started for it, or an `abort` of it (from and to are both production)."""
        if decision not in ("canary", "abort"):
            raise ValueError(f"hold records a canary or an abort, not {decision!r}")
        with self._locked() as state:
            production = state["production"]
            return self._record(
                state,
                production,
                production,
                decision,
                decided_by,
                reason,
                {"candidate": candidate, **(evidence or {})},
            )

    def abort(
        self,
        candidate: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        decided_by: str = "canary",
    ) -> ReleaseRecord:
        """Record that `candidate` will not be released (a canary aborted); production stays."""
        return self.hold("abort", candidate, reason, evidence, decided_by)

    def promote(
        self,
        version: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
        decided_by: str = "train",
        decision: str = "promote",
    ) -> None:
        if not (self.versions_dir / version / "provenance.json").exists():
            raise ValueError(f"no such version: {version}")
        with self._locked() as state:
            self._record(
                state, state["production"], version, decision, decided_by, reason, evidence
            )
            state["production"] = version

    def rollback(
        self, reason: str, evidence: dict[str, Any] | None = None, decided_by: str = "operator"
    ) -> ReleaseRecord:
        """Put the previous production version back (movierec/registry/releases.py says which);
        raises NoPreviousError, changing nothing, when there is none."""
        with self._locked() as state:
            current = state["production"]
            target = previous(records(state), current, self.loads)
            record = self._record(state, current, target, "rollback", decided_by, reason, evidence)
            state["production"] = target
        return record

    def releases(self) -> list[ReleaseRecord]:
        return records(self.read())

    def loads(self, version: str) -> bool:
        """Whether a version's directory is still whole enough to load."""
        directory = self.versions_dir / version
        return (directory / "provenance.json").is_file() and (directory / "model").is_dir()

    @staticmethod
    def _record(
        state: dict[str, Any],
        from_version: str | None,
        to_version: str | None,
        decision: str,
        decided_by: str,
        reason: str,
        evidence: dict[str, Any] | None,
    ) -> ReleaseRecord:
        record = ReleaseRecord(
            now(), from_version, to_version, decision, decided_by, reason, dict(evidence or {})
        )
        state.setdefault("history", []).append(record.to_json())
        return record


def data_hash(data: TrainingData) -> str:
    """Content hash of what a model learned from (matrix, ids, side information)."""
    digest = hashlib.sha256()
    m = data.matrix
    for array in (m.indptr, m.indices, m.data, data.user_ids):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\n".join(data.item_ids.astype(str)).encode())
    for side in (data.user_age, data.user_gender, data.user_occupation, data.item_genres):
        if side is not None:
            digest.update(side.tobytes())
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """The git commit of the code (and whether it had uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                check=True,
                cwd=root,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": dirty}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions
