"""evalrun's import layers (pyproject.toml's [tool.importlinter]) hold: no module imports from a layer above
its own, so there is no import cycle, at module level or hidden inside a function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import evalrun

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    script = Path(sys.executable).with_name("lint-imports")
    assert script.exists(), f"{script}: missing; install the test extra (pip install -e '.[test]': import-linter)"
    # the evalrun these tests import, whichever checkout it comes from
    source = str(Path(evalrun.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
    checked = subprocess.run([str(script), str(ROOT / "pyproject.toml")], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
