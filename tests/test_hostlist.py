"""Slurm hostlists: expanded and compressed in Slurm's order, never sorted as strings."""

from __future__ import annotations

import random
import subprocess

import pytest

from hpc_tf.core.hostlist import compress, expand, expand_tasks_per_node


@pytest.mark.parametrize(
    "text, hosts",
    [
        ("n1", ["n1"]),
        ("n[9-10]", ["n9", "n10"]),
        ("n[001-003]", ["n001", "n002", "n003"]),
        ("n[09-11]", ["n09", "n10", "n11"]),
        ("a[1-2],b[3,5-6]", ["a1", "a2", "b3", "b5", "b6"]),
        ("r[1-2]-n[01-02]", ["r1-n01", "r1-n02", "r2-n01", "r2-n02"]),
        ("x[3,1]", ["x3", "x1"]),
        ("n10,n9", ["n10", "n9"]),
        ("gpu-node-a", ["gpu-node-a"]),
        ("n1,,n2", ["n1", "n2"]),
        ("", []),
    ],
)
def test_expand(text: str, hosts: list[str]) -> None:
    assert expand(text) == hosts


@pytest.mark.parametrize(
    "text, part",
    [
        ("n[1-2", "unclosed"),
        ("n1-2]", "unmatched"),
        ("n[a-b]", "'a-b'"),
        ("n[5-3]", "'5-3'"),
        ("n[[1]]", "nested"),
        ("n[]", "''"),
    ],
)
def test_malformed_hostlists_name_the_part(text: str, part: str) -> None:
    with pytest.raises(ValueError, match=part.replace("[", r"\[")):
        expand(text)


@pytest.mark.parametrize(
    "hosts, text",
    [
        (["n1", "n2", "n3", "n5"], "n[1-3,5]"),
        (["n9", "n10"], "n[9-10]"),
        (["n08", "n09", "n10"], "n[08-10]"),
        (["n10", "n9"], "n[10,9]"),
        (["a1", "b1", "a2"], "a1,b1,a2"),
        (["login"], "login"),
        (["n1"], "n1"),
    ],
)
def test_compress_keeps_order(hosts: list[str], text: str) -> None:
    assert compress(hosts) == text
    assert expand(text) == hosts


def test_compress_round_trips_random_lists() -> None:
    rng = random.Random(7)
    for _ in range(300):
        hosts = [
            f"{rng.choice(['n', 'gpu', 'r1-n'])}{rng.randint(0, 120):0{rng.choice([1, 2, 3])}d}"
            for _ in range(rng.randint(1, 12))
        ]
        assert expand(compress(hosts)) == hosts


@pytest.mark.parametrize("text, counts", [("2(x3),1", [2, 2, 2, 1]), ("4", [4]), ("1,2(x2)", [1, 2, 2])])
def test_tasks_per_node(text: str, counts: list[int]) -> None:
    assert expand_tasks_per_node(text) == counts


def _random_hostlist(rng: random.Random) -> str:
    groups = []
    for _ in range(rng.randint(1, 3)):
        prefix = rng.choice(["n", "gpu", "c-", "rack1-n"])
        width = rng.choice([1, 2, 3])
        parts = []
        for _ in range(rng.randint(1, 3)):
            low = rng.randint(0, 30)
            high = low + rng.randint(0, 12)
            parts.append(f"{low:0{width}d}" if low == high else f"{low:0{width}d}-{high:0{width}d}")
        groups.append(f"{prefix}[{','.join(parts)}]")
    return ",".join(groups)


@pytest.mark.slurm
def test_expand_matches_scontrol_show_hostnames(slurm_cluster: dict) -> None:
    rng = random.Random(11)
    cases = [_random_hostlist(rng) for _ in range(60)] + ["n[9-10]", "r[1-2]-n[01-02]", "n[1-010]", "x[3,1]"]
    for text in cases:
        proc = subprocess.run(["scontrol", "show", "hostnames", text], capture_output=True, text=True, check=True)
        assert expand(text) == proc.stdout.split(), text
