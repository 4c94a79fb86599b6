"""The benchmark command must not rot: ``bench/run.py --quick`` on a tiny data set.

Benchmarks are not part of the test suite; this only checks that the one command still seeds,
serves, loads (wrk, or bench/loadgen.py without it) and writes a results table in which every
scenario has a positive request rate for graphsec and for the bare app. About 40 s.

Marked ``bench``: left out of the default run (``addopts`` in pyproject.toml), run with
``scripts/test -m bench``; ``.ci/run`` runs them in a step of their own after the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("get_by_id", "list_top1", "list_top100", "filter_count", "deep_paging",
             "patch_control_profile", "post_score", "batch_get_by_id", "filter_range", "filter_eq",
             "filter_startswith", "filter_in_ids", "filter_window_range", "lambda_count")


def _number(cell: str) -> float:
    return float(cell.strip().replace(",", ""))


def test_bench_quick_run_writes_a_results_table(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(  # noqa: S603 (our own script, arguments fixed here)
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert "## Machine and versions" in text
    assert "python bench/run.py --quick" in text
    for name in SCENARIOS:
        row = re.search(rf"^\| {name} \|(.*)$", text, re.M)
        assert row, f"no row for {name} in:\n{text}"
        cells = row.group(1).split("|")
        graphsec_rps, bare_rps, errors = _number(cells[0]), _number(cells[3]), _number(cells[8])
        assert graphsec_rps > 0, row.group(0)
        assert bare_rps > 0, row.group(0)
        assert errors == 0, row.group(0)
    assert not (tmp_path / "data" / "sqlite-tiny").exists()  # the seeded store is removed


def test_compare_runs_a_revision_against_the_bare_app(tmp_path: Path) -> None:
    """``bench/compare.py`` (revisions side by side) must not rot either: one short round."""
    proc = subprocess.run(  # noqa: S603 (our own script, arguments fixed here)
        [sys.executable, str(ROOT / "bench" / "compare.py"), "--backend", "sqlite", "--scale",
         "tiny", "--rev", "here=WORK", "--rounds", "1", "--duration", "1", "--data-dir",
         str(tmp_path / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = re.search(r"^  here \(WORK\): median ([\d,]+) req/s, ([\d.]+)% of the bare app",
                     proc.stdout, re.M)
    assert line, proc.stdout
    assert _number(line.group(1)) > 0
    assert float(line.group(2)) > 0
    assert not (tmp_path / "data" / "sqlite-tiny").exists()  # the seeded store is removed


def test_bench_import_compares_import_with_seeding(tmp_path: Path) -> None:
    out = tmp_path / "import.md"
    proc = subprocess.run(  # noqa: S603 (our own script, arguments fixed here)
        [sys.executable, str(ROOT / "bench" / "import.py"), "--tenants", "2", "--days", "50",
         "--verify", "--data-dir", str(tmp_path / "data"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert "byte-identical: yes" in text
    rates = re.findall(r"^\| `graphsec (seed|export|import)` \| [\d.]+ \| ([\d,]+) \|$", text,
                       re.MULTILINE)
    assert [step for step, _ in rates] == ["seed", "export", "import"]
    assert all(_number(rate) > 0 for _, rate in rates)
