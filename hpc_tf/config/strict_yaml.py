"""YAML the way configs need it: bounded, no aliases, no duplicate keys, YAML 1.2's core schema (not PyYAML's 1.1).

- A config file is a regular file of at most 1 MiB, in UTF-8 (`/dev/zero` or a FIFO is refused at once).
- Aliases (`*name`) are refused: they are how a 600-byte file expands to gigabytes ("billion laughs")
  or refers to itself; a config never needs them.
- A key given twice in one mapping is an error, not "the last one wins".
- Lists and mappings nest at most `MAX_DEPTH` levels: PyYAML's composer recurses, so deeper text would
  end in a RecursionError (and nothing in a config needs more than a handful).
- Scalars are YAML 1.2's core schema, the tags PyYAML's YAML 1.1 loader reads differently included:
  - booleans are `true`/`True`/`TRUE`/`false`/`False`/`FALSE` only: `yes`, `no`, `on`, `off`, `y`, `n` are
    strings (so `use_gpu: yes` is refused by validation, not silently true);
  - integers are decimal, `0o17` (octal) or `0x1F` (hex); `1:00:00` is the string it looks like, not the
    base-60 integer 3600 (which would become `--time=3600`, 60 hours); `1_000` and `0b1` are strings too;
  - a decimal with a leading zero (`010`) is refused: YAML 1.2 reads 10, YAML 1.1 (PyYAML, many tools) 8;
  - a float literal beyond the float range (`1e999`) is refused rather than read as infinity, and so is a
    nonzero one that would round to 0.0 (`1e-999`); `.inf` and `.nan` are what they say (validation
    refuses them where a key needs a finite number);
  - dates (`2026-01-01`) and `=` are strings; a plain `<<` key (YAML 1.1's merge) is refused;
  - only the core tags are allowed (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq`, `!!map`), and
    a tagged value must be one the tag's YAML 1.2 form allows (`!!int 0b1`, `!!bool yes` are refused).
  Each refusal is a problem naming the dotted key, the value and what is allowed; all are reported at once.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import MISSING, ConfigError, Problem

MAX_BYTES = 1 << 20
MAX_DEPTH = 32  # lists and mappings inside each other; the deepest sweep config needs about 7
_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
CORE_TAGS = "!!str, !!int, !!float, !!bool, !!null, !!seq, !!map"

# YAML 1.2.2, 10.3.2 (core schema); `re.ASCII` so that `[0-9]` is not any Unicode digit
_NULL_RE = re.compile(r"~|null|Null|NULL|", re.ASCII)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", re.ASCII)
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)", re.ASCII)
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)", re.ASCII)


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader for composing only (no aliases, bounded depth) with the core schema's resolvers;
    `_Builder` turns its nodes into values."""

    source: str | None = None
    key_path: tuple[str, ...] = ()  # where the text goes (a `--set` key): for messages and the depth bound
    _path: list[str]

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in hpc_tf configs", event.start_mark
            )
        if parent is None:
            self._path = list(self.key_path)
        elif isinstance(parent, yaml.SequenceNode):
            self._path.append(f"[{index}]")
        else:  # a mapping's key (index None) or value (index: its key's node)
            self._path.append(index.value if isinstance(index, yaml.ScalarNode) else "?")
        try:
            if self.check_event(yaml.events.CollectionStartEvent) and len(self._path) >= MAX_DEPTH:
                raise ConfigError([Problem(dotted(self._path), TOO_DEEP, source=self.source)])
            return super().compose_node(parent, index)
        finally:
            if parent is not None:
                self._path.pop()


TOO_DEEP = f"nested too deeply: lists and mappings may nest at most {MAX_DEPTH} levels"

ConfigLoader.yaml_implicit_resolvers = {}
ConfigLoader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
ConfigLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
ConfigLoader.add_implicit_resolver(_INT, re.compile(rf"^(?:{_INT_RE.pattern})$", re.ASCII), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(rf"^(?:{_FLOAT_RE.pattern}|{_INF_RE.pattern}|{_NAN_RE.pattern})$", re.ASCII),
    list("-+.0123456789"),
)


def dotted(parts: Sequence[str], limit: int = 160) -> str:
    """`a.b[0].c` from its parts, cut short: a 1,000-part key must not make a huge message."""
    text = "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(parts)} levels)"


class _Bad:
    """The value of a scalar that was refused (its problem is recorded; the load fails at the end)."""


_BAD = _Bad()


class _Builder:
    """Nodes → Python values under the core schema, recording a Problem for every refused scalar."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def refuse(self, path: Sequence[str], message: str, value: object = MISSING) -> _Bad:
        self.problems.append(Problem(dotted(path), message, value, source=self.source))
        return _BAD

    def build(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path) if node.tag == _MAP else self.refuse(path, _tag_message(node))
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                return self.refuse(path, _tag_message(node))
            return [self.build(item, (*path, f"[{i}]")) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        return self.refuse(path, _tag_message(node))  # PyYAML's composer makes no other node

    def mapping(self, node: yaml.MappingNode, path: tuple[str, ...]) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.refuse(
                    path, "a key must be a single value (text, a number, true/false or null), not a list or mapping"
                )
                continue
            here = (*path, key_node.value)
            key = self.scalar(key_node, here)
            if key == "<<" and key_node.style is None:
                key = self.refuse(here, MERGE_KEY)
            value = self.build(value_node, here)
            if key is _BAD:
                continue
            line = key_node.start_mark.line + 1
            if key in result:
                self.refuse(
                    here,
                    f"duplicate key {key!r} (line {line}; first given on line {lines[key]}): each key may appear once",
                )
                continue
            result[key], lines[key] = value, line
        return result

    def scalar(self, node: yaml.ScalarNode, path: tuple[str, ...]) -> Any:
        text, tag = node.value, node.tag
        if tag == _STR:
            return _joined_surrogates(text)
        if tag == _NULL:
            return None if _NULL_RE.fullmatch(text) else self.refuse(path, NOT_NULL, text)
        if tag == _BOOL:
            return _BOOLS[text] if text in _BOOLS else self.refuse(path, NOT_BOOL, text)
        if tag == _INT:
            return self.integer(text, path)
        if tag == _FLOAT:
            return self.number(text, path)
        return self.refuse(path, _tag_message(node), text)

    def integer(self, text: str, path: tuple[str, ...]) -> Any:
        if not _INT_RE.fullmatch(text):
            return self.refuse(path, NOT_INT, text)
        digits = text.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits.isdigit():
            return self.refuse(path, leading_zero(text), text)
        try:
            return int(digits[2:], 8 if digits[1] == "o" else 16) if digits[1:2] in ("o", "x") else int(text, 10)
        except ValueError:  # more decimal digits than Python converts (sys.get_int_max_str_digits)
            return self.refuse(path, f"an integer of more than {sys.get_int_max_str_digits()} digits", text)

    def number(self, text: str, path: tuple[str, ...]) -> Any:
        if _INF_RE.fullmatch(text):
            return -math.inf if text.startswith("-") else math.inf
        if _NAN_RE.fullmatch(text):
            return math.nan
        if not _FLOAT_RE.fullmatch(text):
            return self.refuse(path, NOT_FLOAT, text)
        value = float(text)
        if math.isinf(value):
            return self.refuse(path, OVERFLOW, text)
        if value == 0 and any(ch in "123456789" for ch in re.split("[eE]", text)[0]):
            return self.refuse(path, UNDERFLOW, text)
        return value


MERGE_KEY = "`<<` is YAML 1.1's merge key, which YAML 1.2 does not have (nor hpc_tf): write the keys out"
NOT_NULL = "not valid YAML: !!null takes null, Null, NULL, ~ or nothing"
NOT_BOOL = "not valid YAML: !!bool takes true or false (YAML 1.2's booleans: true, True, TRUE, false, False, FALSE)"
NOT_INT = "not valid YAML: !!int takes a YAML 1.2 integer: decimal (10), octal (0o17) or hexadecimal (0x1F)"
NOT_FLOAT = "not valid YAML: !!float takes a YAML 1.2 number: 1.5, -2e-3, 10, .inf, -.inf or .nan"
OVERFLOW = (
    "a number beyond the largest float (about 1.8e308), which YAML would read as infinity; write .inf if that is meant"
)
UNDERFLOW = (
    "a nonzero number below the smallest float (about 5e-324), which YAML would read as 0.0; write 0 if that is meant"
)


def leading_zero(text: str) -> str:
    """Why `010` is refused: the two YAML versions read it differently (and the user may have meant the text)."""
    sign, digits = text[: len(text) - len(text.lstrip("+-"))], text.lstrip("+-")
    decimal = f"{sign}{int(digits, 10)}".lstrip("+")
    if set(digits) <= set("01234567"):
        octal = int(sign + digits, 8)
        old = f"octal {octal}"
        # YAML 1.2's 0o takes no sign; where both readings agree, octal is no alternative worth naming
        hint = f", 0o{digits.lstrip('0')} for octal" if not sign and octal != int(digits, 10) else ""
    else:
        old, hint = f"the text {text!r}", ""
    return (
        f"a number with a leading zero is ambiguous: YAML 1.2 reads {text} as {decimal}, YAML 1.1 as {old}; "
        f"write {decimal}{hint}, or quote it ('{text}') for the text"
    )


def _tag_message(node: yaml.Node) -> str:
    tag = node.tag
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else (tag if tag.startswith("!") else f"!<{tag}>")
    kinds: dict[type, str] = {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}
    kind = kinds.get(type(node), "a value")
    return f"the tag {shown} is not allowed on {kind}: hpc_tf configs use YAML 1.2's core tags ({CORE_TAGS})"


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


def parse(text: str, source: str | None, key_path: Sequence[str] = ()) -> Any:
    """YAML text → Python data; every way it can fail is a ConfigError naming the source (and the key where
    there is one). `key_path`: where the text goes (a `--set` key), for messages and the depth bound."""
    try:
        return _load(text, source, key_path)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"not valid YAML: {_short(exc)}", source=source)]) from None
    except RecursionError:
        raise ConfigError([Problem("", "not valid YAML: nested too deeply", source=source)]) from None


def parse_value(text: str, key_path: Sequence[str], source: str = "--set") -> Any:
    """A `--set` value under the file's rules; text that is not YAML at all (`a: b: c`) is the text itself,
    but a value the rules refuse (`010`, `1e999`, `!!binary x`) is a ConfigError naming the key."""
    try:
        return _load(text, source, key_path)
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise ConfigError([Problem(dotted(key_path), TOO_DEEP, source=source)]) from None


def _load(text: str, source: str | None, key_path: Sequence[str]) -> Any:
    loader = ConfigLoader(text)
    loader.source, loader.key_path = source, tuple(key_path)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is None:
        return None
    builder = _Builder(source)
    value = builder.build(node, tuple(key_path))
    if builder.problems:
        raise ConfigError(builder.problems)
    return value


def _joined_surrogates(value: str) -> str:
    """JSON's `"\\ud83d\\ude00"` (an emoji as a surrogate pair, as `json.dump` writes it) reaches PyYAML as two
    lone surrogates: join them. A lone surrogate that is left is refused by validation."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if _paired(value) else value
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


def dump(data: Any) -> str:
    """Data → YAML text that `parse` reads back as the same data (the run's and the sweep's config.yaml): PyYAML's
    dumper quotes only what YAML 1.1 would misread, so `08`, `1e999` and `0o17` came out plain, text these rules
    read as a number or refuse; every string that YAML 1.2 or these rules would not read as itself is quoted."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml's: ~10x faster
    def represent_str(self, data: str) -> Any:
        if data == "<<" or data in _BOOLS or any(r.fullmatch(data) for r in _NOT_TEXT):
            return self.represent_scalar(f"{_TAG}str", data, style="'")
        return super().represent_str(data)


_NOT_TEXT = (_NULL_RE, _INT_RE, _FLOAT_RE, _INF_RE, _NAN_RE)
_Dumper.add_representer(str, _Dumper.represent_str)
