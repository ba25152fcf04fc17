"""YAML the way configs need it: bounded, no aliases, no duplicate keys, no YAML 1.1 number surprises.

- A config file is a regular file of at most 1 MiB, in UTF-8 (`/dev/zero` or a FIFO is refused at once).
- Aliases (`*name`) are refused: they are how a 600-byte file expands to gigabytes ("billion laughs")
  or refers to itself; a config never needs them.
- A key given twice in one mapping is an error, not "the last one wins".
- Numbers are YAML 1.2's: `1:00:00` is the string it looks like, not the base-60 integer 3600 (which
  would become `--time=3600`, 60 hours); `1_000` and `0b1` are strings too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem

MAX_BYTES = 1 << 20
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the rules above."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in hpc_tf configs", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (each key may appear once)", key_node.start_mark
                    )
                seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep)


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", re.ASCII), list("-+0123456789")
)
ConfigLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        re.ASCII,
    ),
    list("-+.0123456789"),
)


def read_config_text(path: Path) -> str:
    """A config file's text; anything that is not a small UTF-8 regular file is a ConfigError naming it."""
    try:
        if not path.is_file():
            what = "not found" if not path.exists() else "not a regular file"
            raise ConfigError([Problem("", f"config file {what}: {path}")])
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read config file {path}: {exc.strerror or exc}")]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([Problem("", f"config file is larger than {MAX_BYTES // 2**20} MiB: {path}")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem("", f"not UTF-8 text (byte {exc.start}): {path}")]) from None


def parse(text: str, source: str) -> Any:
    """YAML text → Python data; every way it can fail is a ConfigError naming the source."""
    try:
        return _joined_surrogates(yaml.load(text, Loader=ConfigLoader))
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"not valid YAML: {_short(exc)}", source=source)]) from None
    except RecursionError:
        raise ConfigError([Problem("", "not valid YAML: nested too deeply", source=source)]) from None
    except Exception as exc:  # PyYAML's constructors fail in many ways on tagged scalars: `!!int abc`, `!!bool ""`
        raise ConfigError(
            [Problem("", f"not valid YAML: {type(exc).__name__}: {_short(exc)}", source=source)]
        ) from None


def _joined_surrogates(value: Any) -> Any:
    """JSON's `"\\ud83d\\ude00"` (an emoji as a surrogate pair, as `json.dump` writes it) reaches PyYAML as two
    lone surrogates: join them. A lone surrogate that is left is refused by validation."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if _paired(value) else value
        return value
    if isinstance(value, dict):
        return {_joined_surrogates(k): _joined_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_joined_surrogates(v) for v in value]
    return value


def _paired(text: str) -> bool:
    """Every surrogate in `text` is part of a high-low pair."""
    i = 0
    while i < len(text):
        if "\ud800" <= text[i] <= "\udbff" and i + 1 < len(text) and "\udc00" <= text[i + 1] <= "\udfff":
            i += 2
        elif "\ud800" <= text[i] <= "\udfff":
            return False
        else:
            i += 1
    return True


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
