"""docs/dashboard.md's pictures come from `make dashboard-pictures`: the same target, a small run.

The script evaluates the Terraform dashboard with OpenTofu, runs a job with a broker pause,
reads the metrics back with GetMetricData and draws each widget. A metric renamed in the product
or in the Terraform, or a widget renamed without its picture, fails here.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, DocEnv

pytestmark = pytest.mark.docs

PICTURES = ROOT / "docs" / "img" / "dashboard"


def tofu() -> str:
    candidates = [os.environ.get("TOFU", "")]
    candidates += sorted(
        glob.glob(str(Path.home() / ".cache" / "csv-to-kafka" / "tofu-*" / "tofu"))
    )
    candidates.append(shutil.which("tofu") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    message = "OpenTofu is not installed: run `make deploy-tools` (or make docs-check)"
    if os.environ.get("DEPLOY_CHECK_STRICT") == "1":
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError  # unreachable


def test_a_small_run_draws_every_picture_the_guide_shows(docenv: DocEnv, tmp_path: Path) -> None:
    # The make target itself (TOFU= so that it does not build another OpenTofu).
    args = f"--rows 30000 --pause 3 --out {tmp_path}"
    result = subprocess.run(
        ["make", "--no-print-directory", "dashboard-pictures", f"TOFU={tofu()}",
         f"DASHBOARD_ARGS={args}"],
        env=docenv.env, capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    drawn = {p.name for p in tmp_path.glob("*.png")}
    committed = {p.name for p in PICTURES.glob("*.png")}
    assert drawn == committed, "rerun `make dashboard-pictures`: the widgets changed"
    shown = set(
        re.findall(r"img/dashboard/([\w.-]+\.png)", (ROOT / "docs" / "dashboard.md").read_text())
    )
    assert shown == committed, f"docs/dashboard.md shows {shown ^ committed} wrongly"
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["alarms"]["breaching_periods"] >= 1, "the broker pause did not stall the job"
    rows = summary["widgets"]["Rows sent"]["data_points"]
    assert all(n > 0 for n in rows.values()), rows
