"""pytest setup for the cocotb benches: ``python -m pytest sim`` from the repository root."""

import sys
from pathlib import Path

import pytest

# `sim` is not a package: put it on the path so tests import the shared helpers as `runner`.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner import CACHE  # noqa: E402


@pytest.fixture(scope="session")
def sim_cache() -> Path:
    return CACHE


@pytest.fixture(scope="session")
def digits():
    from hwbnn import data

    return data.load("digits")
