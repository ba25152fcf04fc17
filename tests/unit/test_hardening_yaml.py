"""Issue 19, YAML numbers and booleans and `--set`: configs are read as YAML 1.2's core schema, and what the
two YAML versions read differently, or what no number can hold, is refused with the dotted key and the value."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_tf.config.loading import apply_overrides, load_config
from hpc_tf.config.strict_yaml import MAX_DEPTH, dump, parse
from hpc_tf.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
LEADING_ZERO_010 = (
    "a number with a leading zero is ambiguous: YAML 1.2 reads 010 as 10, YAML 1.1 as octal 8; "
    "write 10, 0o10 for octal, or quote it ('010') for the text"
)
OVERFLOW = (
    "a number beyond the largest float (about 1.8e308), which YAML would read as infinity; write .inf if that is meant"
)
TOO_DEEP = f"nested too deeply: lists and mappings may nest at most {MAX_DEPTH} levels"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "c.yaml")
    return [str(p) for p in info.value.problems]


# config text → the value it loads to
LOADED = {
    "decimal": ("n: 10", {"n": 10}),
    "octal-0o": ("n: 0o17", {"n": 15}),
    "hex-0x": ("n: 0x1F", {"n": 31}),
    "zero": ("n: 0", {"n": 0}),
    "minus-zero": ("n: -0", {"n": 0}),
    "quoted-leading-zero-is-text": ("n: '010'", {"n": "010"}),
    "str-tag-leading-zero-is-text": ("n: !!str 010", {"n": "010"}),
    "float-leading-zero-is-unambiguous": ("n: 010.5", {"n": 10.5}),
    "float-tag-on-an-integer": ("n: !!float 1", {"n": 1.0}),
    "yes-no-on-off-y-n-are-text": (
        "[yes, no, on, off, y, n, Yes, NO, On, OFF]",
        ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF"],
    ),
    "core-booleans": ("[true, True, TRUE, false, False, FALSE]", [True, True, True, False, False, False]),
    "not-a-boolean-case": ("[tRUE, fAlse]", ["tRUE", "fAlse"]),
    "yes-no-as-keys": ("yes: 1\nno: 2\non: 3", {"yes": 1, "no": 2, "on": 3}),
    "nulls": ("{a: null, b: Null, c: NULL, d: ~, e: }", dict.fromkeys("abcde")),
    "infinity-literal": ("[.inf, -.inf, +.INF]", [math.inf, -math.inf, math.inf]),
    "largest-float": ("n: 1.7976931348623157e308", {"n": 1.7976931348623157e308}),
    "smallest-subnormal": ("n: 5e-324", {"n": 5e-324}),
    "zero-with-a-big-exponent": ("n: 0e-999", {"n": 0.0}),
    "date-is-text": ("d: 2026-01-01", {"d": "2026-01-01"}),
    "datetime-is-text": ("d: 2026-01-01 10:00:00", {"d": "2026-01-01 10:00:00"}),
    "equals-is-text": ("v: =", {"v": "="}),
    "quoted-merge-key-is-a-key": ("'<<': 1", {"<<": 1}),
    "base-60-is-text": ("t: 1:00:00", {"t": "1:00:00"}),
    "binary-is-text": ("b: 0b1", {"b": "0b1"}),
    "underscores-are-text": ("u: 1_000", {"u": "1_000"}),
    "capital-0O-0X-are-text": ("[0O17, 0X1F]", ["0O17", "0X1F"]),
    "signed-octal-is-text": ("n: -0o17", {"n": "-0o17"}),
    f"nested-{MAX_DEPTH}-levels": ("[" * MAX_DEPTH + "]" * MAX_DEPTH, None),
}


@pytest.mark.parametrize("text, expected", LOADED.values(), ids=LOADED.keys())
def test_yaml_1_2_values(text: str, expected: Any) -> None:
    value = parse(text, "c.yaml")
    if expected is None:  # the nesting case: only that it loads
        assert isinstance(value, list)
    else:
        assert value == expected and [type(v) for v in _leaves(value)] == [type(v) for v in _leaves(expected)]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_nan_literal() -> None:
    assert [math.isnan(v) for v in parse("[.nan, .NaN, .NAN]", "c.yaml")] == [True, True, True]


# config text → the one problem it gives, exactly
REFUSED = {
    "leading-zero-010": ("max_total_runs: 010", f"c.yaml: max_total_runs: {LEADING_ZERO_010} (got '010')"),
    "leading-zero-hyperparameter": (
        "script_params:\n  --n: 010",
        f"c.yaml: script_params.--n: {LEADING_ZERO_010} (got '010')",
    ),
    "leading-zero-0755": (
        "mode: 0755",
        "c.yaml: mode: a number with a leading zero is ambiguous: YAML 1.2 reads 0755 as 755, YAML 1.1 as octal 493; "
        "write 755, 0o755 for octal, or quote it ('0755') for the text (got '0755')",
    ),
    "leading-zero-08-not-octal": (
        "month: 08",
        "c.yaml: month: a number with a leading zero is ambiguous: YAML 1.2 reads 08 as 8, YAML 1.1 as the text "
        "'08'; write 8, or quote it ('08') for the text (got '08')",
    ),
    "leading-zero-signed": (
        "n: -010",
        "c.yaml: n: a number with a leading zero is ambiguous: YAML 1.2 reads -010 as -10, YAML 1.1 as octal -8; "
        "write -10, or quote it ('-010') for the text (got '-010')",
    ),
    "leading-zero-in-a-list": ("a: [1, 010]", f"c.yaml: a[1]: {LEADING_ZERO_010} (got '010')"),
    "leading-zero-key": ("010: x", f"c.yaml: 010: {LEADING_ZERO_010} (got '010')"),
    "int-tag-leading-zero": ("n: !!int 010", f"c.yaml: n: {LEADING_ZERO_010} (got '010')"),
    "overflow-1e999": ("script_params:\n  --lr: 1e999", f"c.yaml: script_params.--lr: {OVERFLOW} (got '1e999')"),
    "overflow-negative": ("x: -1e999", f"c.yaml: x: {OVERFLOW} (got '-1e999')"),
    "overflow-float-tag": ("x: !!float 1e400", f"c.yaml: x: {OVERFLOW} (got '1e400')"),
    "underflow-1e-999": (
        "x: 1e-999",
        "c.yaml: x: a nonzero number below the smallest float (about 5e-324), which YAML would read as 0.0; "
        "write 0 if that is meant (got '1e-999')",
    ),
    "bool-tag-yes": (
        "use_gpu: !!bool yes",
        "c.yaml: use_gpu: not valid YAML: !!bool takes true or false (YAML 1.2's booleans: true, True, TRUE, false, False, FALSE) "
        "(got 'yes')",
    ),
    "int-tag-binary": (
        "n: !!int 0b11",
        "c.yaml: n: not valid YAML: !!int takes a YAML 1.2 integer: decimal (10), octal (0o17) or hexadecimal (0x1F) (got '0b11')",
    ),
    "int-tag-base-60": (
        "n: !!int 1:00",
        "c.yaml: n: not valid YAML: !!int takes a YAML 1.2 integer: decimal (10), octal (0o17) or hexadecimal (0x1F) (got '1:00')",
    ),
    "float-tag-text": (
        "x: !!float abc",
        "c.yaml: x: not valid YAML: !!float takes a YAML 1.2 number: 1.5, -2e-3, 10, .inf, -.inf or .nan (got 'abc')",
    ),
    "null-tag-text": (
        "x: !!null x",
        "c.yaml: x: not valid YAML: !!null takes null, Null, NULL, ~ or nothing (got 'x')",
    ),
    "timestamp-tag": (
        "d: !!timestamp 2026-01-01",
        "c.yaml: d: the tag !!timestamp is not allowed on a value: hpc_tf configs use YAML 1.2's core tags "
        "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map) (got '2026-01-01')",
    ),
    "set-tag": (
        "s: !!set {a, b}",
        "c.yaml: s: the tag !!set is not allowed on a mapping: hpc_tf configs use YAML 1.2's core tags "
        "(!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)",
    ),
    "merge-key": (
        "script_params:\n  <<: {--a: 1}",
        "c.yaml: script_params.<<: `<<` is YAML 1.1's merge key, which YAML 1.2 does not have (nor hpc_tf): "
        "write the keys out",
    ),
    "duplicate-key": (
        "experiment: a\nexperiment: b",
        "c.yaml: experiment: duplicate key 'experiment' (line 2; first given on line 1): each key may appear once",
    ),
    "too-deep": ("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH, f"c.yaml: a{'[0]' * (MAX_DEPTH - 1)}: {TOO_DEEP}"),
    "too-deep-3000": ("[" * 3000 + "]" * 3000, f"c.yaml: {'[0]' * MAX_DEPTH}: {TOO_DEEP}"),
}


@pytest.mark.parametrize("text, problem", REFUSED.values(), ids=REFUSED.keys())
def test_refused(text: str, problem: str) -> None:
    assert problems_of(text) == [problem]


def test_every_refusal_in_a_file_is_reported_at_once() -> None:
    found = problems_of("a:\n  b: [010, 1e999]\n  c: {d: yes, e: !!bool on}\n")
    assert [p.split(":")[1].strip() for p in found] == ["a.b[0]", "a.b[1]", "a.c.e"]


def test_bool_keys_refuse_yaml_1_1_words(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("pass\n")
    config = tmp_path / "c.yaml"
    config.write_text("source_directory: src\nentry_script: train.py\nuse_gpu: yes\npip_no_index: off\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert sorted(str(p) for p in info.value.problems) == [
        f"{config}: pip_no_index: expected true or false (got 'off')",
        f"{config}: use_gpu: expected true or false (got 'yes')",
    ]


# `--set` overrides: the same rules as the file, and a bound on the key
SET = {
    "set-leading-zero": (["node_count=010"], f"--set: node_count: {LEADING_ZERO_010} (got '010')"),
    "set-hyperparameter": (["script_params.--n=010"], f"--set: script_params.--n: {LEADING_ZERO_010} (got '010')"),
    "set-overflow": (["script_params.--lr=1e999"], f"--set: script_params.--lr: {OVERFLOW} (got '1e999')"),
    "set-in-a-list": (["x=[1, 010]"], f"--set: x[1]: {LEADING_ZERO_010} (got '010')"),
    "set-deep-key": (
        [".".join(["a"] * 1000) + "=1"],
        "--set: " + ("a." * 80)[:160] + "... (1000 levels): a key of 1000 dotted parts is nested too deeply: "
        f"a --set key may have at most {MAX_DEPTH} parts",
    ),
    "set-key-and-value-too-deep": (
        [".".join(["a"] * MAX_DEPTH) + "=[1]"],
        f"--set: {'.'.join(['a'] * MAX_DEPTH)}: {TOO_DEEP}",
    ),
}


@pytest.mark.parametrize("overrides, problem", SET.values(), ids=SET.keys())
def test_set_refused(overrides: list[str], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, overrides)
    assert [str(p) for p in info.value.problems] == [problem]


SET_LOADED = {
    "set-yes-is-text": ("use_gpu=yes", {"use_gpu": "yes"}),
    "set-true": ("use_gpu=true", {"use_gpu": True}),
    "set-octal": ("n=0o17", {"n": 15}),
    "set-date-is-text": ("d=2026-01-01", {"d": "2026-01-01"}),
    "set-not-yaml-is-the-text": ("setup=a: b: c", {"setup": "a: b: c"}),
    "set-empty": ("x=", {"x": ""}),
    f"set-key-of-{MAX_DEPTH}-parts": (".".join(["a"] * MAX_DEPTH) + "=1", None),
}


@pytest.mark.parametrize("override, expected", SET_LOADED.values(), ids=SET_LOADED.keys())
def test_set_values(override: str, expected: Any) -> None:
    data = apply_overrides({}, [override])
    assert data == expected if expected is not None else isinstance(data["a"], dict)


# The real CLI: exit 2, key and value on stderr, no traceback, nothing written.
CLI = {
    "cli-leading-zero": ("script_params:\n  --n: 010\n", [], ["script_params.--n", "'010'", "0o10"]),
    "cli-sweep-max-total-runs": (
        "hyperdrive:\n  primary_metric_name: acc\n  primary_metric_goal: maximize\n  max_total_runs: 010\n"
        "  hyperparameter_sampling: {type: grid, parameter_space: {--n: [1, 2]}}\n",
        [],
        ["hyperdrive.max_total_runs", "'010'"],
    ),
    "cli-bool-word": ("use_gpu: on\n", [], ["use_gpu: expected true or false", "'on'"]),
    "cli-overflow": ("script_params:\n  --lr: 1e999\n", [], ["script_params.--lr", "'1e999'", "infinity"]),
    "cli-set-leading-zero": ("", ["--set", "node_count=010"], ["--set: node_count", "'010'"]),
    "cli-set-deep-key": ("", ["--set", ".".join(["a"] * 1000) + "=1"], ["--set: a.a.a", "1000 dotted parts"]),
    "cli-deep-file": (
        "script_params:\n  --x: " + "[" * 500 + "]" * 500 + "\n",
        [],
        ["script_params.--x[0]", "nested too deeply"],
    ),
}


@pytest.mark.parametrize("body, extra, words", CLI.values(), ids=CLI.keys())
def test_cli_validate(tmp_path: Path, body: str, extra: list[str], words: list[str]) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("pass\n")
    config = tmp_path / "c.yaml"
    config.write_text("source_directory: src\nentry_script: train.py\n" + body)
    before = sorted(tmp_path.rglob("*"))
    proc = subprocess.run(
        [sys.executable, "-m", "hpc_tf", "validate", str(config), *extra],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("hpc_tf: error:"), proc.stderr
    assert all(w in proc.stderr for w in words), proc.stderr
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("config", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_configs_still_load(config: Path) -> None:
    load_config(config)


# Hypothesis: any scalar text loads to what YAML 1.2's core schema says it is, or is refused; never a traceback.
REFUSED_VALUE = object()


def core_schema(text: str) -> Any:
    """YAML 1.2.2 §10.3.2 (core schema tag resolution) for a plain scalar, written from the spec; REFUSED_VALUE
    where hpc_tf refuses (a leading zero, a float literal that overflows or underflows)."""

    def full(pattern: str) -> bool:
        return re.fullmatch(pattern, text, re.ASCII) is not None

    if full(r"null|Null|NULL|~|"):
        return None
    if full(r"true|True|TRUE|false|False|FALSE"):
        return text.lower() == "true"
    if full(r"[-+]?[0-9]+"):
        digits = text.lstrip("+-")
        if (len(digits) > 1 and digits.startswith("0")) or len(digits) > 4300:
            return REFUSED_VALUE
        return int(text)
    if full(r"0o[0-7]+"):
        return int(text[2:], 8)
    if full(r"0x[0-9a-fA-F]+"):
        return int(text[2:], 16)
    if full(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"):
        number = float(text)
        mantissa = re.split("[eE]", text)[0]
        if math.isinf(number) or (number == 0 and any(c in "123456789" for c in mantissa)):
            return REFUSED_VALUE
        return number
    if full(r"[-+]?\.(inf|Inf|INF)"):
        return -math.inf if text.startswith("-") else math.inf
    if full(r"\.(nan|NaN|NAN)"):
        return math.nan
    return text


def _plain_scalar(text: str) -> bool:
    """Whether `text` is, as YAML, one plain scalar whose value is `text` itself."""
    try:
        node = yaml.compose(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError:
        return False
    return isinstance(node, yaml.ScalarNode) and node.style is None and node.value == text


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


number_like = st.from_regex(r"[-+]?(0[oxbOX])?[0-9a-fA-F_.:]{0,8}([eE][-+]?[0-9]{1,4})?", fullmatch=True)
words = st.sampled_from(
    [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "True",
        "TRUE",
        "tRue",
        "null",
        "~",
        "=",
        "<<",
        ".inf",
        "-.Inf",
        ".nan",
        ".NaN",
        "+.nan",
        "2026-01-01",
        "1:00:00",
        "0b1",
        "1_000",
        "1e999",
        "1e-999",
        "010",
        "0o8",
        "0x",
    ]
)
scalar_text = st.one_of(number_like, words, st.text(max_size=12))


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(text=scalar_text, tag=st.sampled_from(["", "!!int ", "!!float ", "!!bool ", "!!null ", "!!str "]))
def test_any_scalar_loads_as_yaml_1_2_or_is_refused(text: str, tag: str) -> None:
    try:
        value = parse(tag + text, "c.yaml")
    except ConfigError:
        value = REFUSED_VALUE
    if tag or not _plain_scalar(text):
        return  # tagged, or not one plain scalar: only that it loaded or was refused (no other exception)
    expected = core_schema(text)
    assert value is REFUSED_VALUE if expected is REFUSED_VALUE else _same(value, expected), (text, value, expected)
    if text.strip():  # a --set value is read by the same rules (an empty one is "")
        try:
            override = apply_overrides({}, [f"k={text}"])["k"]
        except ConfigError:
            override = REFUSED_VALUE
        assert override is value or _same(override, value), (text, override, value)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                       st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=5))  # fmt: skip
def test_config_yaml_as_written_reads_back_as_written(data: dict[str, str]) -> None:
    """The run's and the sweep's config.yaml (strict_yaml.dump) read back by these rules as the same data: PyYAML's
    own dumper left `08`, `1e999`, `0o17` plain, which YAML 1.2 reads as numbers or these rules refuse."""
    assert parse(dump(data), None) == data


@pytest.mark.parametrize("text", ["08", "010", "1e999", "1e-999", "0o17", "0x1F", "yes", "on", "null", "~", "", ".inf",
                                  ".nan", "1_000", "0b1", "2026-01-01", "<<", "1:00:00", "True", "-0", "+1.5e3"])  # fmt: skip
def test_strings_that_look_like_numbers_are_quoted_in_config_yaml(text: str) -> None:
    assert parse(dump({"v": text, "l": [text]}), None) == {"v": text, "l": [text]}
