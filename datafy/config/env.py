"""Reading environment variables: one variable at a time, converted, range-checked, and named in the error."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from datafy.errors import ConfigurationError

T = TypeVar("T")

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Turn '250ms', '5s', '5m', '2h' or a bare number of seconds into seconds."""
    text = text.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            number, scale = text[: -len(unit)], _UNITS[unit]
            break
    else:
        number, scale = text, 1
    seconds = float(number) * scale
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(text)
    return seconds


class EnvReader:
    """Reads one variable, converts it and names it in the error when it is wrong."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(
        self,
        name: str,
        convert: Callable[[str], T],
        default: T,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> T:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = convert(raw)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{name}={raw!r} is not a valid {describe(convert)}") from None
        in_range = not isinstance(value, (int, float)) or (
            math.isfinite(value) and (minimum or 0) <= value <= (maximum or math.inf)
        )
        if minimum is not None and not in_range:
            bounds = f">= {minimum:g}" if maximum is None else f"between {minimum:g} and {maximum:g}"
            raise ConfigurationError(f"{name}={raw!r} must be a number {bounds}")
        return value


def describe(convert: Callable[[str], object]) -> str:
    names = {int: "whole number", float: "number", parse_duration: "duration (like 600, 30s, 10m)",
             parse_switch: "switch (on or off)", readable_file: "path of a readable file (is it mounted?)"}  # fmt: skip
    return names.get(convert, "value")


def readable_file(text: str) -> str:
    """A path to a file this process can read."""
    if not os.access(text, os.R_OK):
        raise ValueError(text)
    return text


def parse_switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise ValueError(text)
    return value in ("on", "true", "1", "yes")
