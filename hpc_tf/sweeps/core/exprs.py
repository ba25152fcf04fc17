"""A sweep's parameter space: script flags → parameter expressions, from the HyperDrive call string
(`"loguniform(-6, -1)"`) or the Azure ML v2 object (`{type: loguniform, min_value: -6, max_value: -1}`).

A call string is read with `ast.parse(text, mode="eval")` and only a call of one of EXPR_KINDS with literal
arguments is accepted (numbers, strings, booleans; in choice also one list/tuple or `range(...)` of int
literals): nothing is ever evaluated. The call becomes the v2 object (positional arguments named in ARGS
order, keywords by those names) and both forms go through the same checks.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any, Callable, Mapping

from .bounds import draw_problem
from .fields import UNSAFE_CHARS, Problems, is_unicode
from .spec import EXPR_KINDS, ParamExpr, Scalar

ARGS: dict[str, tuple[str, ...]] = {
    "choice": ("values",),
    "randint": ("upper",),
    **{k: ("min_value", "max_value") for k in ("uniform", "loguniform")},
    **{k: ("min_value", "max_value", "q") for k in ("quniform", "qloguniform")},
    **{k: ("mu", "sigma") for k in ("normal", "lognormal")},
    **{k: ("mu", "sigma", "q") for k in ("qnormal", "qlognormal")},
}
BAYESIAN_KINDS = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")
FLAG_RE = re.compile(r"-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*")  # whole name (fullmatch: no trailing newline)
MAX_PARAMETERS = 100
MAX_CHOICES = 10_000  # values of one choice (a range included)
MAX_TEXT = 10_000  # characters of one call string
MAX_UPPER = 2**63  # randint draws int64 values (what Optuna and numpy take)
MAX_INT_BITS = 13_000  # about 3,900 digits: str() refuses an int of over 4,300 (sys.get_int_max_str_digits)
FORMS = "a call string such as 'choice(16, 32)' or 'loguniform(-6, -1)', or a mapping {type: ..., ...}"
CUT = (
    "; it looks cut at a comma: in YAML's flow syntax ({...} or [...]) a comma ends an unquoted value, so quote "
    "the whole expression, e.g. {--a: 'choice(1, 2)'}"
)
FRAGMENT = re.compile(rf"\s*({'|'.join(EXPR_KINDS)})\s*\(")  # a value starting like a call of an expression


class _NotLiteral(Exception):
    """An argument that is not a literal; the message says what is allowed."""


def parse_space(raw: Any, key: str, problems: Problems) -> list[tuple[str, str, ParamExpr]] | None:
    """(name as written, script flag, expression) per well-formed parameter, in the given order (the caller
    sees the problems of the others in `problems`); None when the space is not a mapping.

    A name starting with '-' is the flag itself; a v2 name without one (`lr`) becomes `--lr`."""
    data = problems.mapping(raw, key, "script flag → expression, e.g. {--lr: 'loguniform(-6, -1)'}")
    if data is None:
        return None
    if not data:
        problems.add(key, "must name at least one parameter, e.g. {--lr: 'loguniform(-6, -1)'}", raw)
    if len(data) > MAX_PARAMETERS:
        problems.add(key, f"at most {MAX_PARAMETERS} parameters (got {len(data)})")
    out: list[tuple[str, str, ParamExpr]] = []
    seen: dict[str, str] = {}
    for name, value in data.items():
        path = f"{key}.{name}"
        flag = flag_of(name)
        if flag is None:
            problems.add(
                path,
                "a parameter name must be a script flag such as --lr or --batch-size (or lr, "
                "stored as --lr): a letter or digit, then letters, digits, '_', '.', '-'",
                name,
            )
        elif flag in seen:
            problems.add(path, f"the same flag {flag} as {seen[flag]!r}: give each flag once", name)
        else:
            seen[flag] = str(name)
        expr = parse_expr(value, path, problems)
        if flag is not None and expr is not None:
            out.append((str(name), flag, expr))
    return out


def flag_of(name: Any) -> str | None:
    """The script flag of a parameter name (`lr` → `--lr`, `-x` kept), or None when it is not one."""
    if not isinstance(name, str):
        return None
    flag = name if name.startswith("-") else f"--{name}"
    return flag if FLAG_RE.fullmatch(flag) else None


def parse_expr(raw: Any, key: str, problems: Problems) -> ParamExpr | None:
    """One expression, from either form; every problem is recorded under `key` (object form: `key.field`)."""
    if isinstance(raw, str):
        call = _call(raw, key, problems)
        return None if call is None else _build(call, key, problems, sub=False)
    if isinstance(raw, Mapping):
        return _build(raw, key, problems, sub=True)
    problems.add(key, f"must be a parameter expression: {FORMS} (a fixed value belongs in script_params)", raw)
    return None


def _call(text: str, key: str, problems: Problems) -> dict[str, Any] | None:
    """The v2 object of a call string, or None (with the problem recorded)."""
    kinds = ", ".join(EXPR_KINDS)
    if len(text) > MAX_TEXT:
        problems.add(key, f"an expression is at most {MAX_TEXT} characters (got {len(text)})", text)
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    node = tree.body if tree is not None else None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in EXPR_KINDS):
        hint = CUT if tree is None and text.count("(") > text.count(")") else ""
        problems.add(key, f"must be a call of one of {kinds} with literal arguments, e.g. 'choice(16, 32)'{hint}", text)
        return None
    kind, names = node.func.id, ARGS[node.func.id]
    try:
        if kind == "choice":
            if node.keywords:
                raise _NotLiteral("choice takes values only, no keyword arguments")
            one = len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple, ast.Call))
            values = _literal(node.args[0], True) if one else [_literal(a, False) for a in node.args]
            return {"type": kind, "values": values}
        if len(node.args) > len(names):
            raise _NotLiteral(f"{kind} takes {len(names)} arguments ({', '.join(names)}), got {len(node.args)}")
        call: dict[str, Any] = {"type": kind, **{n: _literal(a, False) for n, a in zip(names, node.args, strict=False)}}
        for word in node.keywords:
            if word.arg not in names or word.arg in call:
                raise _NotLiteral(f"{kind} takes the arguments {', '.join(names)}; unexpected {word.arg}=")
            call[word.arg] = _literal(word.value, False)
    except _NotLiteral as exc:
        problems.add(key, str(exc), text)
        return None
    return call


def _literal(node: ast.expr, sequence: bool) -> Any:
    """The value of a literal node; in choice (`sequence`) also a list/tuple of literals or range(ints)."""
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        number = node.operand.value if isinstance(node.operand, ast.Constant) else None
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return -number if isinstance(node.op, ast.USub) else number
    if sequence and isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, False) for e in node.elts]
    if sequence and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        bounds = [_literal(a, False) for a in node.args]
        if node.keywords or not 1 <= len(bounds) <= 3 or any(type(b) is not int for b in bounds):
            raise _NotLiteral("range takes 1 to 3 integer literals, e.g. choice(range(1, 5))")
        if bounds[-1] == 0 and len(bounds) == 3:
            raise _NotLiteral("range's step cannot be 0")
        span = range(*bounds)
        count = _range_length(span)  # len() of a range past sys.maxsize raises OverflowError
        if count > MAX_CHOICES:
            raise _NotLiteral(f"a choice takes at most {MAX_CHOICES} values (the range has {count})")
        return list(span)
    shown = _shown(node)
    hint = " (a string must be quoted)" if isinstance(node, ast.Name) else ""
    allowed = "numbers, quoted strings, True/False" + (", one list or range(...)" if sequence else "")
    raise _NotLiteral(f"arguments must be literals ({allowed}){hint}; {shown!r} is not")


def _range_length(span: range) -> int:
    """How many values a range has, in Python ints (no limit)."""
    step = span.step
    return max(0, (span.stop - span.start + step - (1 if step > 0 else -1)) // step)


def _shown(node: ast.expr) -> str:
    try:
        return ast.unparse(node)[:80]
    except (ValueError, RecursionError):
        return "?"


def _build(data: Mapping[Any, Any], key: str, problems: Problems, sub: bool) -> ParamExpr | None:
    """The ParamExpr of a v2 object; `sub`: problems name `key.field` (object form) rather than `key`."""
    given = data.get("type")
    kind = given.strip().lower() if isinstance(given, str) else ""
    if kind not in ARGS:
        problems.add(
            f"{key}.type" if sub else key, f"the type must be one of {', '.join(EXPR_KINDS)}", data.get("type")
        )
        return None
    names = ARGS[kind]
    if sub:
        problems.known(data, ("type", *names), key)
    before = len(problems.found)
    where: Callable[[str], str] = (lambda n: f"{key}.{n}") if sub else (lambda n: key)
    for name in names:
        if name not in data:
            problems.add(where(name), f"{kind} needs {name} (arguments: {', '.join(names)})")
    if len(problems.found) > before:
        return None
    if kind == "choice":
        values = _choice(data["values"], where("values"), problems, from_yaml=sub)
        return None if values is None else ParamExpr(kind="choice", values=values)
    if kind == "randint":
        upper = problems.integer(data["upper"], where("upper"), 1, extra=" (randint(upper) draws 0 … upper-1)")
        if upper is not None and upper > MAX_UPPER:
            problems.add(
                where("upper"),
                "randint's upper is at most 2**63: its values are int64 (what Optuna and numpy take)",
                upper,
            )
            return None
        return None if upper is None else ParamExpr(kind="randint", upper=upper)
    got = {n: problems.number(data[n], where(n), positive=n in ("sigma", "q"), what=f" ({n})") for n in names}
    if any(v is None for v in got.values()):
        return None
    return _ranged(kind, got, where, problems)


def _ranged(kind: str, got: dict[str, Any], where: Callable[[str], str], problems: Problems) -> ParamExpr | None:
    """The bound checks of the continuous kinds (numbers already checked finite, sigma and q > 0): an ordered
    range, and draws that stay finite and quantized (`bounds`)."""
    q = got.get("q")
    if "min_value" in got and got["min_value"] >= got["max_value"]:
        low = got["min_value"]
        problems.add(where("max_value"), f"max_value must be greater than min_value ({low:g})", got["max_value"])
        return None
    found = draw_problem(kind, got)
    if found is not None:
        name, why = found
        problems.add(where(name), why, got[name])
        return None
    if "mu" in got:
        return ParamExpr(kind=kind, mu=got["mu"], sigma=got["sigma"], q=q)  # type: ignore[arg-type]
    return ParamExpr(kind=kind, low=got["min_value"], high=got["max_value"], q=q)  # type: ignore[arg-type]


def _choice(raw: Any, key: str, problems: Problems, from_yaml: bool = False) -> tuple[Scalar, ...] | None:
    """Distinct scalar values (1 and 1.0 are the same value; True and 1 are not), whose flag texts differ too: a
    trial's value reaches the script as `str(value)`, so 1 and '1' would be one argv (a grid would run it twice).
    `from_yaml`: the object form, where a YAML flow list may have split a call string at its commas."""
    if not isinstance(raw, (list, tuple)) or not raw:
        problems.add(key, "choice needs a non-empty list of values (strings, numbers, true/false)", raw)
        return None
    if len(raw) > MAX_CHOICES:
        problems.add(key, f"a choice takes at most {MAX_CHOICES} values (got {len(raw)})")
        return None
    seen: set[tuple[str, Any]] = set()
    texts: dict[str, Any] = {}
    for value in raw:
        bad, marker = _bad_value(value, from_yaml)
        if not bad and marker in seen:
            bad = "a duplicate"
        if bad:
            problems.add(key, f"choice values must be distinct strings, finite numbers or true/false; {bad}", value)
            return None
        text = str(value)
        if text in texts:
            problems.add(
                key,
                f"choice values {texts[text]!r} and {value!r} both reach the script as the text {text!r} (a flag's "
                "value is passed as text): give only one of them",
                value,
            )
            return None
        seen.add(marker)
        texts[text] = value
    return tuple(raw)


def _bad_value(value: Any, from_yaml: bool) -> tuple[str, tuple[str, Any]]:
    """(what is wrong with one choice value or "", its identity for the duplicate check)."""
    if isinstance(value, str):
        if any(c in value for c in UNSAFE_CHARS):
            return "a newline, carriage return or NUL byte", ("s", value)
        if not is_unicode(value):
            return "text that is not valid Unicode (a lone surrogate such as \\ud800)", ("s", value)
        if from_yaml and FRAGMENT.match(value) and value.count("(") != value.count(")"):
            return (
                "this looks like a call string that YAML split at its commas (in a flow list [...] a comma "
                "separates values): list the values themselves, values: [1, 2], or give the whole expression "
                "quoted instead of the mapping, e.g. --a: 'choice(1, 2)'"
            ), ("s", value)
        return "", ("s", value)
    if isinstance(value, bool):
        return "", ("b", value)
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        return "an integer too long to pass as text", ("n", value)
    if isinstance(value, (int, float)):
        finite = not isinstance(value, float) or math.isfinite(value)
        return ("" if finite else "a number that is not finite"), ("n", value)
    return "a value that is not a string, number or true/false", ("x", id(value))


def expr_to_raw(expr: ParamExpr) -> dict[str, Any]:
    """The v2 object form of an expression (what `parse_expr` reads back as the same ParamExpr)."""
    fields = {"values": list(expr.values), "upper": expr.upper, "min_value": expr.low, "max_value": expr.high}
    fields.update(mu=expr.mu, sigma=expr.sigma, q=expr.q)
    return {"type": expr.kind, **{n: fields[n] for n in ARGS[expr.kind]}}


def check_kinds(space: list[tuple[str, str, ParamExpr]], sampling: str, key: str, problems: Problems) -> None:
    """Grid takes only choice; bayesian only BAYESIAN_KINDS (HyperDrive's rules), naming each offender."""
    allowed = ("choice",) if sampling == "grid" else BAYESIAN_KINDS if sampling == "bayesian" else EXPR_KINDS
    for name, _, expr in space:
        if expr.kind not in allowed:
            problems.add(
                f"{key}.{name}",
                f"{sampling} sampling takes only {', '.join(allowed)} expressions (random sampling takes any)",
                expr.text(),
            )
