"""One installed namespace: a wheel holds `pigeonhole.model`, `pigeonhole.serving`, ... and nothing else
at the top, so `import model` fails after `pip install .` and no other package's `model` collides."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pigeonhole

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["core", "model", "prediction_log", "serving", "monitoring"]
PIP = [sys.executable, "-m", "pip"]


def test_the_wheel_installs_every_part_under_pigeonhole_only(tmp_path: Path) -> None:
    # from a copy: an in-tree build would reuse build/ and could ship a module deleted since
    checkout = tmp_path / "checkout"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "mutants", ".pigeonhole", "*cache*", "*.egg-info")
    shutil.copytree(ROOT, checkout, symlinks=True, ignore=skip)
    subprocess.run([*PIP, "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(checkout)], check=True)
    (wheel,) = tmp_path.glob("pigeonhole-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = wheel.name.split("-py3")[0] + ".dist-info"
    assert {name.split("/")[0] for name in names} == {"pigeonhole", dist_info}
    for part in PARTS:
        expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / part).glob("*.py")}
        assert {f"pigeonhole/{name}" for name in expected} <= set(names), part
    assert "pigeonhole/serving/bentofile.yaml" in names and "pigeonhole/monitoring/alerts.yml" in names
    assert "pigeonhole/monitoring/templates/summary.html" in names, "the drift report's templates ship"
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert f"\nVersion: {pigeonhole.__version__}\n" in metadata, "pyproject.toml and the package agree"
    assert f"\nLicense-Expression: {pigeonhole.__licence__}\n" in metadata

    target = tmp_path / "site"
    subprocess.run([*PIP, "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)

    def run(code: str) -> subprocess.CompletedProcess[str]:
        """Python from another folder, seeing only the installed wheel for this project."""
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={"PYTHONPATH": str(target)},
            capture_output=True,
            text=True,
        )

    bare = run("import model")
    assert bare.returncode != 0 and "No module named 'model'" in bare.stderr
    found = run("import pigeonhole.prediction_log.records as r; print(r.__file__)")
    assert found.returncode == 0 and found.stdout.strip().startswith(str(target)), found.stderr
