"""How settings are read: a TOML file, ``SHADOWTAP_*`` variables and overrides, type-checked.

Sources, later ones win:

1. the defaults of the settings dataclasses (:mod:`shadowtap.config`);
2. a TOML file: ``Settings.load(path)``, or the file named by ``SHADOWTAP_CONFIG``;
3. environment variables ``SHADOWTAP_<SECTION>_<KEY>``, e.g. ``SHADOWTAP_KAFKA_BOOTSTRAP``,
   ``SHADOWTAP_CAPTURE_SAMPLE_PERCENT=10``; lists and tables take JSON
   (``SHADOWTAP_CAPTURE_EXCLUDE_PATHS='["/health*"]'``), a list of strings also takes
   ``a,b,c``. ``SHADOWTAP_BOOTSTRAP`` is short for ``SHADOWTAP_KAFKA_BOOTSTRAP``;
4. keyword arguments to ``Settings.load(overrides={"capture": {...}})``.

Every value is checked against its field's type, and a dataclass's own check
(``__post_init__``) runs too, so an unknown key or a bad value raises ConfigError naming the
key, what was given and what is expected: a typo fails at start-up instead of silently doing
the default. :func:`to_env` goes the other way, for a child process.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson

from shadowtap.errors import ConfigError

ENV_PREFIX = "SHADOWTAP_"
# Variables that are not settings: ignored when scanning for SHADOWTAP_<SECTION>_<KEY>.
_NON_SETTING_ENV = frozenset(
    {"SHADOWTAP_CONFIG", "SHADOWTAP_BOOTSTRAP", "SHADOWTAP_CACHE_DIR", "SHADOWTAP_DEVKAFKA"}
)


def load(
    cls: type[Any],
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """Dataclass ``cls`` (one field per section) from defaults ← file ← environment ← overrides."""
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    path = path or environ.get("SHADOWTAP_CONFIG")
    if path:
        data = _read_toml(Path(path))
    _merge(data, _from_env(cls, environ))
    if overrides:
        _merge(data, {k: dict(v) if isinstance(v, Mapping) else v for k, v in overrides.items()})
    return build(cls, data)


def build(cls: type[Any], data: Mapping[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and value."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    section = f" in [{where.rstrip('.')}]" if where else ""
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown setting '{where}{unknown[0]}'; known keys{section}: "
            f"{', '.join(sorted(names))}"
        )
    kwargs = {name: _coerce(hints[name], value, f"{where}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid settings{section}: {exc}") from exc


class _EnvText(str):
    """A value from an environment variable: text that may be parsed into the wanted type.

    Values from TOML are already typed and are checked, never parsed, so that
    ``enabled = "yes"`` in a file is an error rather than a guess.
    """

    __slots__ = ()


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``hint``; environment text is parsed first."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, _EnvText):
            value = _parse_json(value, key, "a table")
        if not isinstance(value, Mapping):
            _bad(key, value, "a table")
        return build(hint, value, f"{key}.")
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            _bad(key, value, "one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is tuple:
        if isinstance(value, _EnvText):
            value = _parse_list(value, key)
        if not isinstance(value, list | tuple):
            _bad(key, value, "a list")
        return tuple(_coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if isinstance(value, _EnvText):
            value = _parse_json(value, key, "a table")
        if not isinstance(value, Mapping):
            _bad(key, value, "a table")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, _EnvText) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if type(value) is not bool:
            _bad(key, value, "true or false")
        return value
    if hint is int or hint is float:
        accepted, expected = _NUMBERS[hint]
        if isinstance(value, _EnvText):
            value = _parse_number(value, key, hint, expected)
        if type(value) not in accepted:
            _bad(key, value, expected)
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            _bad(key, value, "a string")
        return str(value)
    if hint is Any:
        return value
    raise ConfigError(f"setting '{key}' has a type shadowtap cannot read: {hint!r}")


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


# A number setting's accepted types (bool is not one) and how an error names them.
_NUMBERS: dict[type, tuple[tuple[type, ...], str]] = {
    int: ((int,), "an integer"),
    float: ((int, float), "a number"),
}


def _parse_number(text: str, key: str, kind: type, expected: str) -> Any:
    try:
        return kind(text.replace("_", ""))
    except ValueError:
        _bad(key, text, expected)


def _parse_list(text: str, key: str) -> Any:
    text = text.strip()
    if text.startswith("["):
        return _parse_json(text, key, "a list")
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_json(text: Any, key: str, expected: str) -> Any:
    if not isinstance(text, str):
        _bad(key, text, expected)
    try:
        return orjson.loads(str(text))
    except orjson.JSONDecodeError:
        _bad(key, text, f"{expected} written as JSON")


def _bad(key: str, value: Any, expected: str) -> typing.NoReturn:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ConfigError(f"setting '{key}' = {shown} is invalid: expected {expected}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file {path} does not exist (set by argument or SHADOWTAP_CONFIG)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _from_env(cls: type[Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Map SHADOWTAP_<SECTION>_<KEY> variables onto nested keys; unknown ones fail."""
    sections = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, dict[str, Any]] = {}
    if environ.get("SHADOWTAP_BOOTSTRAP"):
        out.setdefault("kafka", {})["bootstrap"] = _EnvText(environ["SHADOWTAP_BOOTSTRAP"])
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NON_SETTING_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                f"environment variable {name} is not a shadowtap setting: expected "
                "SHADOWTAP_<SECTION>_<KEY> with SECTION one of "
                + ", ".join(s.upper() for s in sections)
            )
        key = rest[len(section) + 1 :]
        out.setdefault(section, {})[key] = _EnvText(value)
    return out


def to_env(section: str, value: Any) -> dict[str, str]:
    """``SHADOWTAP_<SECTION>_<KEY>`` variables for the fields of ``value`` (a section's
    dataclass) that differ from their defaults: what a child process needs for
    ``Settings.load`` to give it the same section."""
    default = type(value)()
    out: dict[str, str] = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if current is None or current == getattr(default, f.name):
            continue
        if isinstance(current, bool):
            text = "true" if current else "false"
        elif isinstance(current, str | int | float):
            text = str(current)
        else:
            text = orjson.dumps(current).decode()
        out[f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"] = text
    return out


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
