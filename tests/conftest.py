"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data sets (``MLSCALE_DATA_DIR``, else ``../shared/data``); skip when absent."""
    path = Path(os.environ.get("MLSCALE_DATA_DIR", str(_DEFAULT_SHARED)))
    if not (path / "movielens-100k").is_dir():
        pytest.skip(f"real data sets not found in {path} (set MLSCALE_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def _isolated_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may write to the user's real registry or cache.
    monkeypatch.setenv("MLSCALE_REGISTRY", str(tmp_path_factory.getbasetemp() / "registry-default"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
