"""Settings: one typed, validated object per component, filled from the command line, the
environment and a TOML file, over the defaults written once in the settings class.

Every option has one public name, used in all three places: the flag `--batch-lines`, the
variable MOVIEREC_INGEST_BATCH_LINES and the key `batch_lines` in the file's [ingest] table.
The name is the field's, unless the field says otherwise (`option("budget")` keeps a
historic flag) or sits in a group (`group("api_")` prefixes a group's names). Precedence:
command line > environment > file > default. The file comes from `--config FILE` or
MOVIEREC_CONFIG. Tuples take repeated flags, comma-separated variables and TOML lists.

Code that builds a settings object directly (`IngestConfig(source=..., store=...)`) gets
exactly what it passes plus the defaults: only `load` reads the environment and the file,
so every value's origin is known and a bad one is reported with the flag, variable or file
line it came from.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

COMPONENTS = (
    "ingest",
    "train",
    "evaluate",
    "serve",
    "run",
    "simulate",
    "site",
    "monitor",
    "online",
    "experiment",
    "release",
    "provenance",
    "schedule",
    "canary",
    "audit",
)
CONFIG_VARIABLE = "MOVIEREC_CONFIG"
RatingScale = Literal[5, 10]  # stars on the site's rating scale

Origin = tuple[str, Any]  # ("flag" | "variable" | "file", where exactly)
_DEST = "setting:"  # argparse dests of settings options, apart from the command's own
_CONFIG_DEST = "config_file"


def env_prefix(component: str) -> str:
    """MOVIEREC_INGEST_ for ingest: the prefix of the component's variables."""
    return f"MOVIEREC_{component.upper()}_"


def option(name: str | None = None, *, derived: bool = False) -> dict[str, Any]:
    """Field metadata: the option's public name, or `derived` (set by code, never by users)."""
    return {"option": name, "derived": derived}


def group(prefix: str = "") -> dict[str, Any]:
    """Field metadata of a nested settings group: a prefix for the names of its options."""
    return {"prefix": prefix}


def _literal_from_text(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    # Variables are text; pydantic does not read "10" as the literal 10 by itself.
    if isinstance(value, str) and info.field_name is not None:
        for choice in literal_choices(cls.model_fields[info.field_name].annotation):
            if not isinstance(choice, str) and str(choice) == value.strip():
                return choice
    return value


class SettingsGroup(BaseModel):
    """A part of a component's settings (the training's feedback weights, say)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    _literals = field_validator("*", mode="before")(classmethod(_literal_from_text))


class Settings(BaseSettings):
    """A component's settings; subclasses name their component (one of COMPONENTS)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")
    component: ClassVar[str] = ""
    _literals = field_validator("*", mode="before")(classmethod(_literal_from_text))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.component not in COMPONENTS:
            raise TypeError(f"{cls.__name__}.component must be one of {', '.join(COMPONENTS)}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load() gathers the environment and the file itself, to know each value's origin.
        return (init_settings,)


class ConfigError(ValueError):
    """Bad settings: one problem per line, each naming where the value came from."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Option:
    path: tuple[str, ...]  # field names from the settings class down
    name: str  # the public name
    annotation: Any
    info: FieldInfo
    default: Any  # PydanticUndefined when required

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is PydanticUndefined

    def variable(self, component: str) -> str:
        return env_prefix(component) + self.name.upper()


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    """The values of a Literal (also inside `X | None`), else ()."""
    base, _ = unwrap_optional(annotation)
    return get_args(base) if get_origin(base) is Literal else ()


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, else (annotation, False)."""
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def options(settings: type[BaseModel]) -> list[Option]:
    """Every option of a settings class, groups flattened; names are checked to be unique."""
    found: dict[str, Option] = {}
    for item in _walk(settings, (), "", None):
        if item.name in found:
            raise TypeError(
                f"{settings.__name__}: option {item.name!r} is both "
                f"{'.'.join(found[item.name].path)} and {'.'.join(item.path)}"
            )
        found[item.name] = item
    return list(found.values())


def _walk(
    model: type[BaseModel], path: tuple[str, ...], prefix: str, defaults: BaseModel | None
) -> Iterator[Option]:
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("derived"):
            continue
        default = getattr(defaults, name) if defaults is not None else _default_of(info)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            group_default = default if isinstance(default, BaseModel) else None
            inner = prefix + str(extra.get("prefix", ""))
            yield from _walk(annotation, (*path, name), inner, group_default)
            continue
        public = extra.get("option") or prefix + name
        yield Option((*path, name), str(public), annotation, info, default)


def _default_of(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return info.default


def load(
    settings: type[Settings],
    given: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """The validated settings: `given` (public name -> value, from flags) over the
    environment over `config_file` (else the file MOVIEREC_CONFIG names) over defaults.
    Raises ConfigError naming every bad value and where it came from."""
    environ = os.environ if environ is None else environ
    table = {o.name: o for o in options(settings)}
    problems: list[str] = []
    chosen: dict[str, tuple[Any, Origin]] = {}
    if config_file is None and environ.get(CONFIG_VARIABLE):
        config_file = Path(environ[CONFIG_VARIABLE])
    if config_file is not None:
        for key, value in _file_table(config_file, settings.component, problems).items():
            if key in table:
                chosen[key] = (value, ("file", config_file))
            else:
                problems.append(
                    f"{config_file}: [{settings.component}] {key}: unknown setting "
                    f"(known: {', '.join(table)})"
                )
    prefix = env_prefix(settings.component)
    for variable, text in environ.items():
        if not variable.upper().startswith(prefix):
            continue
        key = variable[len(prefix) :].lower()
        if key not in table:
            problems.append(f"{variable}: unknown variable (known: {prefix}{{{', '.join(table)}}})")
            continue
        chosen[key] = (_from_text(table[key], text), ("variable", variable))
    for key, value in (given or {}).items():
        chosen[key] = (value, ("flag", table[key].flag))
    values: dict[str, Any] = {}
    for key, (value, _) in chosen.items():
        *parents, leaf = table[key].path
        node = values
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    try:
        result = settings(**values)
    except ValidationError as error:
        problems += [_describe(e, settings.component, table, chosen) for e in error.errors()]
    if problems:
        raise ConfigError(problems)
    return result


def _from_text(item: Option, text: str) -> Any:
    base, optional = unwrap_optional(item.annotation)
    if optional and text == "":
        return None
    if get_origin(base) is tuple:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def _file_table(path: Path, component: str, problems: list[str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        problems.append(f"the config file {path} does not exist")
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        problems.append(f"the config file {path} cannot be read: {error}")
        return {}
    for name in data:
        if name not in COMPONENTS:
            problems.append(f"{path}: [{name}] is no component's table ({', '.join(COMPONENTS)})")
    found = data.get(component, {})
    if not isinstance(found, dict):
        problems.append(f"{path}: {component} must be a table ([{component}])")
        return {}
    return found


def _describe(
    error: Mapping[str, Any],
    component: str,
    table: Mapping[str, Option],
    chosen: Mapping[str, tuple[Any, Origin]],
) -> str:
    loc = tuple(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    matches = [o for o in table.values() if loc[: len(o.path)] == o.path]
    if not matches:
        return f"{'.'.join(loc)}: {message}" if loc else message
    item = max(matches, key=lambda o: len(o.path))
    if item.name not in chosen:
        if error["type"] == "missing":
            return (
                f"{item.flag} is required (or {item.variable(component)}, "
                f"or {item.name} in the [{component}] table of the config file)"
            )
        return f"{item.name} (default {item.default!r}): {message}"
    value, (kind, where) = chosen[item.name]
    if kind == "flag":
        repeated = value if isinstance(value, tuple | list) else (value,)
        return f"{' '.join(f'{where} {v}' for v in repeated)}: {message}"
    if kind == "variable":
        return f"{where}={value!r} (environment): {message}"
    return f"{where}: [{component}] {item.name} = {value!r}: {message}"


# ---- the command line ---------------------------------------------------------------------
def add_options(parser: argparse.ArgumentParser, settings: type[Settings]) -> None:
    """A command's options, one per option of `settings` (and `--config`); a flag left out
    leaves the value to the environment, the file or the default."""
    parser.set_defaults(settings_class=settings)
    parser.add_argument(
        "--config",
        type=Path,
        dest=_CONFIG_DEST,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help=f"TOML file whose [{settings.component}] table sets any option below "
        f"(default: the file ${CONFIG_VARIABLE} names, if set)",
    )
    for item in options(settings):
        parser.add_argument(
            item.flag,
            dest=_DEST + item.name,
            default=argparse.SUPPRESS,
            help=_help(item),
            **_argparse_kind(item),
        )
    prefix = env_prefix(settings.component)
    parser.epilog = (
        f"Any option can also be set by the variable {prefix}NAME or by NAME in the "
        f"[{settings.component}] table of the config file (NAME: the option without its "
        f"dashes, '-' as '_'); a flag beats a variable, a variable beats the file."
    )


def from_args(args: argparse.Namespace) -> Any:
    """The validated settings of the command `args` were parsed for (see `load`)."""
    given = {
        key.removeprefix(_DEST): tuple(value) if isinstance(value, list) else value
        for key, value in vars(args).items()
        if key.startswith(_DEST)
    }
    return load(args.settings_class, given, getattr(args, _CONFIG_DEST, None))


def _argparse_kind(item: Option) -> dict[str, Any]:
    base, _ = unwrap_optional(item.annotation)
    if base is bool:
        return {"action": argparse.BooleanOptionalAction if item.default else "store_true"}
    if get_origin(base) is tuple:
        return {"action": "append", **_typed(get_args(base)[0], item)}
    return _typed(base, item)


def _typed(kind: Any, item: Option) -> dict[str, Any]:
    choices = literal_choices(kind)
    if choices:
        shown = {} if all(str(c).isalnum() for c in choices) else {"metavar": repr(choices)}
        return {"type": type(choices[0]), "choices": choices, **shown}
    plain = kind if kind in (int, float, str, Path) else str  # pydantic parses the rest
    return {"type": plain, "metavar": item.name.upper()}


def _help(item: Option) -> str:
    if not item.info.description:
        raise TypeError(f"{'.'.join(item.path)} needs Field(description=...) for --help")
    default = "required" if item.required else f"default: {_shown(item.default)}"
    return f"{item.info.description} ({default})".replace("%", "%%")


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and (not value or value != value.strip()):
        return repr(value)  # a separator of ", " must not read as a comma
    return str(value)
