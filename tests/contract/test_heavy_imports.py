"""Only the vision app imports torch (and ONNX Runtime), and only when one of its commands runs.

Checked in a fresh interpreter: the command line with every installed app loaded and its parser
built, the stages, and the other applications' modules must leave ``torch`` out of ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "onnx")

_PROBE = """
import json, sys
import mlscale.cli, mlscale.serve, mlscale.loadtest, mlscale.registry, mlscale.engines, mlscale.data
import mlscale.apps as apps
import mlscale.apps.recommend.app, mlscale.apps.threat.app, mlscale.apps.vision
for name in apps.application_names():
    apps.get_application(name)
mlscale.cli.build_parser()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def test_the_cli_stages_and_other_apps_do_not_import_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,)], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
