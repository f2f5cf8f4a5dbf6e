"""placeholder"""

from __future__ import annotations

from typing import Any


def add_commands(group: Any) -> None:
    del group
