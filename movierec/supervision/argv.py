"""Settings back into flags: how a supervisor starts a command as a child process with
the settings it holds (movierec/config.py reads them back, the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_origin

from pydantic import BaseModel

from movierec.config import options, unwrap_optional


def to_argv(settings: BaseModel) -> list[str]:
    """The flags that give `settings` its values where they differ from the defaults, for
    starting a command as a child process: parsing them back yields the same settings."""
    argv: list[str] = []
    for item in options(type(settings)):
        value: Any = settings
        for name in item.path:
            value = getattr(value, name)
        if not item.required and value == item.default:
            continue
        base, _ = unwrap_optional(item.annotation)
        if value is None:
            raise ValueError(f"{item.flag}: none cannot be given on a command line")
        if base is bool:
            argv.append(item.flag if value else "--no-" + item.flag[2:])
        elif get_origin(base) is tuple:
            for part in value:
                argv += [item.flag, _as_text(part)]
        else:
            argv += [item.flag, _as_text(value)]
    return argv


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
