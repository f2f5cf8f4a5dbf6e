from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.apps.threat import ThreatDetector, read_flows


@pytest.fixture(scope="session")
def strato(shared_data: Path) -> Path:
    return shared_data / "stratosphere-zeek-labeled"


@pytest.fixture(scope="session")
def slips(shared_data: Path) -> Path:
    return shared_data / "slips-samples"


@pytest.fixture(scope="session")
def capture001(strato: Path) -> pa.Table:
    """992 labelled real flows (CTU botnet capture 230-1, first 1,000 lines)."""
    return read_flows(strato / "001-zeek-scenario-malicious" / "labeled-conn.log")


@pytest.fixture(scope="session")
def detector001(capture001: pa.Table) -> ThreatDetector:
    return ThreatDetector(topics=8, passes=3, seed=0).fit(capture001)
