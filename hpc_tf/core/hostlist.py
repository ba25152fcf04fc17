"""Slurm hostlists and tasks-per-node lists, expanded and compressed in pure Python, in Slurm's order.

Hosts are never sorted: `n[9-10]` is `n9, n10`, the order in which Slurm hands out task ranks.
"""

from __future__ import annotations

import itertools
import re
from typing import Iterable

MAX_HOSTS = 1_000_000
_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+))?$")
_SUFFIX_RE = re.compile(r"^(.*?)(\d+)$")
_TASKS_RE = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def expand(text: str) -> list[str]:
    """Expand a Slurm hostlist (`n[01-03],gpu[1,4-5],r[1-2]-n[1-2]`) into host names, in order.

    Raises ValueError naming the malformed part.
    """
    text = text.strip()
    if not text:
        return []
    hosts: list[str] = []
    for item in _split_top_level(text):
        hosts += _expand_item(item, text)
        if len(hosts) > MAX_HOSTS:
            raise ValueError(f"hostlist {text!r} expands to more than {MAX_HOSTS} hosts")
    return hosts


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested '[' in hostlist {text!r} at position {i}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unmatched ']' in hostlist {text!r} at position {i}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"unclosed '[' in hostlist {text!r}")
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]  # Slurm skips empty items (`n1,,n2`)


def _expand_item(item: str, whole: str) -> list[str]:
    pieces = re.split(r"(\[[^\[\]]*\])", item)
    choices: list[list[str]] = []
    for piece in pieces:
        if piece.startswith("["):
            choices.append(_expand_ranges(piece[1:-1], item))
        elif piece:
            if any(ch in piece for ch in "[] \t"):
                raise ValueError(f"malformed host name {piece!r} in hostlist {whole!r}")
            choices.append([piece])
    size = 1
    for options in choices:
        size *= len(options)
        if size > MAX_HOSTS:
            raise ValueError(f"hostlist {whole!r} expands to more than {MAX_HOSTS} hosts")
    return ["".join(combo) for combo in itertools.product(*choices)]


def _expand_ranges(inner: str, item: str) -> list[str]:
    out: list[str] = []
    for part in inner.split(","):
        match = _RANGE_RE.match(part.strip())
        if not match:
            raise ValueError(f"malformed range {part!r} in {item!r}: expected N or N-M with digits")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise ValueError(f"malformed range {part!r} in {item!r}: end is below start")
        if int(high) - int(low) >= MAX_HOSTS:
            raise ValueError(f"range {part!r} in {item!r} is larger than {MAX_HOSTS} hosts")
        width = len(low)
        out += [f"{n:0{width}d}" for n in range(int(low), int(high) + 1)]
    return out


def compress(hosts: Iterable[str]) -> str:
    """Compress host names into a Slurm hostlist keeping their order: `expand(compress(h)) == h`."""
    groups: list[tuple[str, list[list[int | str]]]] = []  # (prefix, ranges [start, end, width-text])
    for host in hosts:
        if not host or any(ch in host for ch in ",[] \t\n"):
            raise ValueError(f"cannot compress host name {host!r}")
        match = _SUFFIX_RE.match(host)
        if not match:
            groups.append((host, []))
            continue
        prefix, digits = match.groups()
        num = int(digits)
        if groups and groups[-1][0] == prefix and groups[-1][1]:
            ranges = groups[-1][1]
            last = ranges[-1]
            start_digits = str(last[2])
            if num == int(last[1]) + 1 and f"{num:0{len(start_digits)}d}" == digits:
                last[1] = num
                continue
            ranges.append([num, num, digits])
            continue
        groups.append((prefix, [[num, num, digits]]))
    return ",".join(_group_text(prefix, ranges) for prefix, ranges in groups)


def _group_text(prefix: str, ranges: list[list[int | str]]) -> str:
    if not ranges:
        return prefix
    parts = []
    for start, end, digits in ranges:
        width = len(str(digits))
        text = f"{int(start):0{width}d}"
        parts.append(text if start == end else f"{text}-{int(end):0{width}d}")
    if len(parts) == 1 and ranges[0][0] == ranges[0][1]:
        return prefix + parts[0]
    return f"{prefix}[{','.join(parts)}]"


def expand_tasks_per_node(text: str) -> list[int]:
    """Expand Slurm's tasks-per-node form (`2(x3),1` → [2, 2, 2, 1])."""
    counts: list[int] = []
    for part in text.strip().split(","):
        match = _TASKS_RE.match(part.strip())
        if not match:
            raise ValueError(f"malformed tasks-per-node part {part!r} in {text!r}: expected N or N(xM)")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts
