"""Settings from flags, variables and a TOML file: precedence, loud errors naming the source,
and a --help that shows every option with its default."""

from __future__ import annotations

import argparse
import tempfile
import typing
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from movierec.cli import build_parser
from movierec.config import ConfigError, Settings, from_args, load, options
from movierec.ingest.config import IngestConfig
from movierec.models.kinds import MODELS
from movierec.serving.config import ServeConfig
from movierec.training.pipeline import ModelKind, TrainConfig
from tests.support.commands import movierec

COMMANDS = ("ingest", "train", "evaluate", "serve", "run", "simulate", "site")


def parsed(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_flag_beats_a_variable_beats_the_file_beats_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "movierec.toml",
        '[serve]\nport = 1001\nhost = "file-host"\nthreads = 3\n',
    )
    monkeypatch.setenv("MOVIEREC_SERVE_PORT", "1002")
    monkeypatch.setenv("MOVIEREC_SERVE_HOST", "env-host")
    settings = from_args(
        parsed("serve", "--models", "M", "--port", "1003", "--config", str(config))
    )
    assert isinstance(settings, ServeConfig)
    assert settings.port == 1003  # flag over variable and file
    assert settings.host == "env-host"  # variable over file
    assert settings.threads == 3  # file over default
    assert settings.poll == 1.0  # the default
    assert settings.models_dir == Path("M")


def test_the_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "c.toml", '[train]\nstore = "S"\nmodels = "R"\nhalf_life_days = 7\n')
    monkeypatch.setenv("MOVIEREC_CONFIG", str(config))
    monkeypatch.setenv("MOVIEREC_TRAIN_MODEL", "als, itemknn")
    monkeypatch.setenv("MOVIEREC_TRAIN_RATING_SCALE", "10")
    settings = from_args(parsed("train"))
    assert (settings.store, settings.models_dir) == ("S", "R")
    assert settings.feedback.recency_half_life_days == 7.0  # a group's option, flat by name
    assert settings.feedback.rating_scale == 10
    assert settings.models == ("popularity", "als", "itemknn")  # the baseline always trains


def test_repeated_flags_make_a_tuple_in_order() -> None:
    settings = from_args(
        parsed("train", "--store", "S", "--models", "R", "--model", "itemknn", "--model", "als")
    )
    assert settings.models == ("popularity", "itemknn", "als")


@given(
    file=st.none() | st.integers(1, 65535),
    variable=st.none() | st.integers(1, 65535),
    flag=st.none() | st.integers(1, 65535),
)
def test_the_most_direct_source_given_wins(
    file: int | None, variable: int | None, flag: int | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / "c.toml", f"[serve]\nport = {file}\n" if file else "")
        environ = {"MOVIEREC_SERVE_PORT": str(variable)} if variable else {}
        given_flags: dict[str, object] = {"models": "M"}
        if flag:
            given_flags["port"] = flag
        settings = load(ServeConfig, given_flags, path, environ)
    expected = next((v for v in (flag, variable, file) if v), 8082)
    assert settings.port == expected


def test_a_bad_variable_is_exit_2_naming_the_variable(tmp_path: Path) -> None:
    done = movierec(
        "ingest",
        "--source",
        "file://log",
        "--store",
        "store",
        cwd=tmp_path,
        env={"MOVIEREC_INGEST_BATCH_LINES": "0"},
    )
    assert done.returncode == 2
    assert "MOVIEREC_INGEST_BATCH_LINES='0' (environment)" in done.stderr
    assert "greater than or equal to 1" in done.stderr
    assert not (tmp_path / "store").exists()  # refused before anything was done


def test_a_bad_file_value_is_exit_2_naming_the_file_and_key(tmp_path: Path) -> None:
    config = write(tmp_path / "movierec.toml", '[ingest]\nbatch_lines = "many"\n')
    done = movierec(
        "ingest", "--source", "file://log", "--store", "store", "--config", str(config),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{config}: [ingest] batch_lines = 'many'" in done.stderr
    assert "valid integer" in done.stderr


def test_every_bad_value_gets_its_own_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            ServeConfig,
            {"port": 70000, "sample": 2.0},
            None,
            {"MOVIEREC_SERVE_THREADS": "none"},
        )
    problems = caught.value.problems
    assert len(problems) == 4, problems
    assert any(p.startswith("--port 70000:") for p in problems)
    assert any(p.startswith("--sample 2.0:") for p in problems)
    assert any(p.startswith("MOVIEREC_SERVE_THREADS='none'") for p in problems)
    assert any(p.startswith("--models is required") for p in problems)


def test_unknown_keys_tables_and_variables_are_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[ingest]\nbatch_line = 5\n[ingset]\nstore = 1\n")
    with pytest.raises(ConfigError) as caught:
        load(
            IngestConfig,
            {"source": "file://log", "store": "s"},
            config,
            {"MOVIEREC_INGEST_BACH_LINES": "5"},
        )
    text = str(caught.value)
    assert "[ingest] batch_line: unknown setting" in text
    assert "[ingset] is no component's table" in text
    assert "MOVIEREC_INGEST_BACH_LINES: unknown variable" in text


def test_unknown_key_in_the_file_is_exit_2(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "[serve]\nprot = 8083\n")
    done = movierec("serve", "--models", "M", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2 and "[serve] prot: unknown setting" in done.stderr


def test_a_missing_or_broken_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(ServeConfig, {"models": "M"}, tmp_path / "absent.toml", {})
    broken = write(tmp_path / "broken.toml", "[serve\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load(ServeConfig, {"models": "M"}, broken, {})


def _leaf_fields(model: type[BaseModel], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every field a user may set, walked independently of `options`."""
    found: set[tuple[str, ...]] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("derived"):
            continue
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= _leaf_fields(kind, (*path, name))
        else:
            found.add((*path, name))
    return found


def _default_text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value != value.strip():
        return repr(value)
    return str(value)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_option_with_its_default(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings: type[Settings] = parsed(command).settings_class
    with pytest.raises(SystemExit) as done:
        parsed(command, "--help")
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    listing = text[text.index(" options: ") :]
    listed = options(settings)
    assert {item.path for item in listed} == _leaf_fields(settings)
    assert " --config FILE " in listing
    starts = []
    for item in listed:  # in the order added, so each entry ends where the next begins
        # A flag on by default is listed with its negation ("--trust, --no-trust").
        flag = f" {item.flag}, --no-{item.flag[2:]} " if item.default is True else f" {item.flag} "
        starts.append(listing.index(flag, starts[-1] + 1 if starts else 0))
    for item, begin, end in zip(listed, starts, [*starts[1:], len(listing)], strict=True):
        entry = listing[begin:end]
        assert " ".join(str(item.info.description).split()) in entry
        expected = "(required)" if item.required else f"(default: {_default_text(item.default)})"
        assert expected in entry, (item.flag, entry)


def test_help_shows_the_actual_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parsed("ingest", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--batch-lines BATCH_LINES lines per batch (default: 500000)" in text
    assert "--rating-scale {5,10} stars on the site's rating scale (default: 5)" in text
    assert "--follow keep up with the live stream (default: off)" in text
    assert (
        "--source SOURCE the event stream: file://PATH or kafka://HOST:PORT/TOPIC (required)"
        in text
    )


def test_code_builds_settings_directly_with_the_same_checks() -> None:
    config = IngestConfig(source="file://log", store="s", api="")
    assert config.api is None and config.batch_lines == 500_000
    with pytest.raises(ValueError, match="file://PATH or kafka://"):
        IngestConfig(source="http://x", store="s")
    with pytest.raises(ValueError, match="batch_lines"):
        IngestConfig(source="file://log", store="s", batch_lines=0)
    with pytest.raises(ValueError, match="train_share"):
        TrainConfig(store="s", models_dir="m", train_share=1.0)
    with pytest.raises(ValueError, match="frozen"):
        config.store = "elsewhere"  # type: ignore[misc]


def test_the_model_kinds_offered_are_the_models_there_are() -> None:
    assert set(typing.get_args(ModelKind)) == set(MODELS)
