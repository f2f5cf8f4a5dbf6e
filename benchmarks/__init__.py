"""Benchmarks of mlscale against plain baselines, measured side by side in one run.

Run one with ``python -m benchmarks NAME [options]`` (``./run bench NAME``):

- ``ingest``: CSV interactions to a CSR matrix, mlscale vs pandas + scipy;
- ``train``: ALS training and recommend-all, mlscale vs calling ``implicit`` directly.

Each candidate runs in a fresh subprocess (see :mod:`benchmarks._harness`), so
its peak RSS is its own; results go to ``bench-out/<name>-<rows>.json`` and a
table on stdout. Figures and hardware are in ``benchmarks/README.md``.
"""

from __future__ import annotations

__all__: list[str] = []
