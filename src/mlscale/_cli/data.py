"""placeholder"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    del sub
