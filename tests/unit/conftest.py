"""Options for the unit tests: `--update-golden` rewrites tests/golden/ from the current code.

pytest registers command-line options only from conftests it loads at start-up: this one is, when
`tests/unit` or a file in it is named on the command line (`pytest tests/unit/test_golden.py
--update-golden`). Where it is not (`pytest` or `pytest tests`), set HPC_TF_UPDATE_GOLDEN=1 instead.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current code instead of comparing (also: HPC_TF_UPDATE_GOLDEN=1)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether to rewrite golden files rather than compare with them."""
    if os.environ.get("HPC_TF_UPDATE_GOLDEN") == "1":
        return True
    return bool(request.config.getoption("update_golden", default=False))
