"""The probe definitions and the demo family are found from an installed (non-editable) wheel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_probes_and_demo(tmp_path: Path) -> None:
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO), "-w",
         str(wheel_dir)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    wheel = next(wheel_dir.glob("riskaudit-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import riskaudit, riskaudit.resources as r;"
        "from riskaudit.inputs.families import load_family; from riskaudit.probes.pronoun import PronounProbe;"
        "assert riskaudit.__file__.startswith(sys.argv[1]), riskaudit.__file__;"
        "assert str(r.probe_data_dir()).startswith(sys.argv[1]);"
        "p = PronounProbe.load(); f = load_family('demo');"
        "assert all(m.source.startswith(sys.argv[1]) for m in f.members);"
        "from riskaudit.inputs.canaries import load_canaries;"
        "assert len(load_canaries(f.training_data.canaries)) == 120;"
        "print(len(p.spec.templates), len(f.members))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    n_templates, n_members = map(int, proc.stdout.split())
    assert n_templates >= 6 and n_members >= 5
