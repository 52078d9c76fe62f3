"""Settings as data, checked against a schema.

Each pipeline keeps its scales (``tiny``, ``paper``) as JSON files in its ``configs/`` folder; a
user may give the path of their own file instead. A schema is a frozen dataclass that inherits
:class:`ConfigSchema`: its fields are the keys a file may hold (a field with a default may be
left out; a field whose type is another schema is a nested section), and
:meth:`ConfigSchema.from_dict` turns a missing, unknown or mistyped key into a one-line
:class:`~common.errors.ConfigError` naming the key, the file and the valid keys, instead of a
``KeyError`` deep inside a run::

    @dataclass(frozen=True)
    class MDSettings(ConfigSchema):
        temperature_K: float
        steps: int
        frame_every: int = 10

    cfg = load_json_config("tiny", CONFIGS, "md", schema=MDSettings)   # an MDSettings
    cfg.to_dict()                                                      # plain JSON-ready dict
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from common.errors import ConfigError

__all__ = ["ConfigSchema", "load_json_config"]

S = TypeVar("S", bound="ConfigSchema")


class ConfigSchema:
    """Base of frozen-dataclass config schemas.

    :meth:`from_dict` checks, :meth:`to_dict` gives the plain dict back. Keys starting with ``_``
    are comments and are ignored.
    """

    @classmethod
    def keys(cls) -> list[str]:
        """Return the keys this schema knows, in field order."""
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any], where: str = "config",
                  section: str = "") -> S:
        """Check ``data`` against the schema and return the config.

        Parameters
        ----------
        data
            The settings, e.g. a parsed JSON file.
        where
            What the error names as the place (the file).
        section
            Dotted name of this section inside the file (nested schemas; ``""`` at the top).

        Raises
        ------
        ConfigError
            A missing or unknown key, or a value of the wrong type (one line, naming the key).
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{section or 'config'} must be a JSON object of keys, got "
                              f"{type(data).__name__}", where=where, fix=_keys_fix(cls, section))
        given = {k: v for k, v in data.items() if not str(k).startswith("_")}
        check_unknown_keys(cls, given, where, section)
        hints = get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = f"{section}.{f.name}" if section else f.name
            if f.name in given:
                values[f.name] = _checked(given[f.name], hints[f.name], key, where)
            elif (f.default is dataclasses.MISSING
                  and f.default_factory is dataclasses.MISSING):
                raise ConfigError(f"missing key {key!r}", where=where,
                                  fix=_keys_fix(cls, section))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain, JSON-ready dict (nested sections as dicts)."""
        return {f.name: _plain(getattr(self, f.name))
                for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def check_unknown_keys(schema: type[ConfigSchema], keys: Mapping[str, Any] | list[str],
                       where: str, section: str = "") -> None:
    """Raise :class:`ConfigError` naming the first key that ``schema`` does not know."""
    known = set(schema.keys())
    for k in keys:
        if not str(k).startswith("_") and k not in known:
            name = f"{section}.{k}" if section else str(k)
            raise ConfigError(f"unknown key {name!r}", where=where,
                              fix=_keys_fix(schema, section))


def _keys_fix(schema: type[ConfigSchema], section: str) -> str:
    sect = f" of {section}" if section else ""
    return f"valid keys{sect}: {', '.join(schema.keys())}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _checked(value: Any, tp: Any, key: str, where: str) -> Any:
    """Return ``value`` checked against the type hint ``tp``.

    Ints become floats where floats are expected, JSON lists become tuples for tuple fields.
    """
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, ConfigSchema):
        return tp.from_dict(value, where, section=key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in (a for a in args if a is not type(None)):
            try:
                return _checked(value, a, key, where)
            except ConfigError:
                continue
        return _wrong_type(value, tp, key, where)
    if origin in (list, tuple):
        return _checked_sequence(value, tp, key, where)
    if origin is dict or tp is dict:
        return dict(value) if isinstance(value, Mapping) else _wrong_type(value, tp, key, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and isinstance(value, tp) and (
            tp is bool or not isinstance(value, bool)):
        return value
    return _wrong_type(value, tp, key, where)


def _checked_sequence(value: Any, tp: Any, key: str, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if not isinstance(value, (list, tuple)):
        return _wrong_type(value, tp, key, where)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ConfigError(f"key {key!r} needs {len(args)} values, got {len(value)}",
                              where=where, fix=f"give a list like {_example(args)}")
        items = args
    else:
        items = (args[0] if args else Any,) * len(value)
    pairs = enumerate(zip(value, items, strict=True))
    out = [_checked(v, a, f"{key}[{k}]", where) for k, (v, a) in pairs]
    return tuple(out) if origin is tuple else out


def _example(args: tuple) -> str:
    return "[" + ", ".join({"float": "1.0", "int": "1", "str": '"x"'}.get(_type_name(a), "...")
                           for a in args) + "]"


def _wrong_type(value: Any, tp: Any, key: str, where: str) -> Any:
    raise ConfigError(f"key {key!r} must be {_type_name(tp)}, got {type(value).__name__} "
                      f"{value!r}", where=where, fix=f"give {key} as {_type_name(tp)}")


def _plain(value: Any) -> Any:
    if isinstance(value, ConfigSchema):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def load_json_config(name_or_path: str | Path, folder: Path, prefix: str,
                     what: str = "config", where: str = "--config",
                     schema: type[S] | None = None, **overrides: Any) -> Any:
    """Load ``folder/{prefix}_{name}.json`` for a bare name, else the JSON file at the path.

    Parameters
    ----------
    name_or_path
        A scale name (``"tiny"``) or the path of a JSON file.
    folder, prefix
        Where the named configs live and their file-name prefix.
    what, where
        Used in errors: what the file is, and which argument named it.
    schema
        A :class:`ConfigSchema` to check the file against; without it, the dict unchecked.
    **overrides
        Values that replace the file's (``None`` values are skipped); checked with the file.

    Returns
    -------
    dict or schema instance
        The settings, without the ``_comment`` keys.

    Raises
    ------
    ConfigError
        No such config, invalid JSON, or (with ``schema``) a missing, unknown or mistyped key;
        the error names the file.
    """
    p = _config_path(name_or_path, folder, prefix, what, where)
    try:
        data = json.loads(p.read_text())
    except ValueError as exc:
        raise ConfigError(f"not valid JSON ({exc})", where=str(p),
                          fix="check the file's syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"holds a JSON {type(data).__name__}, not an object of keys",
                          where=str(p), fix='write the settings as {"key": value, ...}')
    cfg = {k: v for k, v in data.items() if not k.startswith("_")}
    given = {k: v for k, v in overrides.items() if v is not None}
    if schema is None:
        return {**cfg, **given}
    check_unknown_keys(schema, given, where=f"{p} (overrides)")
    return schema.from_dict({**cfg, **given}, where=str(p))


def _config_path(name_or_path: str | Path, folder: Path, prefix: str, what: str,
                 where: str) -> Path:
    p = Path(name_or_path)
    if not p.suffix:
        p = folder / f"{prefix}_{name_or_path}.json"
    if not p.exists():
        known = sorted(f.stem.removeprefix(f"{prefix}_") for f in folder.glob(f"{prefix}_*.json"))
        raise ConfigError(f"no {what} {str(name_or_path)!r}", where=where,
                          fix=f"use one of {', '.join(known)}, or the path of a JSON file")
    return p
