"""Shared fixtures: the real test data beside the project, and tiny model configs.

`../shared/data` (or $SQUEEZEBERT_SHARED_DATA) holds the real vocab and QQP/GLUE samples. On a user's
clone without it the tests that need it skip with a reason; under CI (CI=true) they fail instead, so a
missing fixture can never turn a parity test into a silent skip.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_DATA = Path(os.environ.get("SQUEEZEBERT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = (f"test data {path} not found: put the shared data beside the project or set "
               f"SQUEEZEBERT_SHARED_DATA")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: missing fixtures fail, they never skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def vocab_file(shared_data) -> Path:
    return _require(shared_data / "vocab" / "bert-base-uncased-vocab.txt")


@pytest.fixture(scope="session")
def qqp_jsonl(shared_data) -> Path:
    return _require(shared_data / "qqp" / "qqp_pairs.jsonl")


@pytest.fixture(scope="session")
def glue_dir(shared_data) -> Path:
    return _require(shared_data / "glue")
