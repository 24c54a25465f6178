"""The hashed lock files are what `make setup` and the image install: they must pin every package with
its hashes and agree with the ranges a developer edits (requirements.txt, pyproject.toml's extras).
A range edited without `make lock` fails here, before an install resolves something nobody reviewed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# one pinned entry: name==version, an optional environment marker, then its --hash lines
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: ; (?P<marker>[^\\]+?))?\s*\\$", re.M)
PYTHON_311 = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.7"}


def _pins(lock: str) -> dict[str, Version]:
    """The version each package gets on Python 3.11 (a universal lock may fork by Python version)."""
    pins: dict[str, Version] = {}
    for match in PIN.finditer((REPO / lock).read_text()):
        marker = match["marker"]
        if marker is None or Requirement(f"x ; {marker}").marker.evaluate(PYTHON_311):  # type: ignore[union-attr]
            pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def _ranges(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _extras() -> list[str]:
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return [line for extra in ("dev", "infra") for line in optional[extra]]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", (REPO / "requirements.txt").read_text().splitlines()),
        ("requirements-dev.lock", (REPO / "requirements.txt").read_text().splitlines() + _extras()),
    ],
)
def test_every_range_is_pinned_inside_it(lock: str, requirements: list[str]) -> None:
    pins = _pins(lock)
    outside = [
        f"{req}: locked {pins.get(canonicalize_name(req.name))}"
        for req in _ranges(requirements)
        if (req.marker is None or req.marker.evaluate(PYTHON_311))
        and pins.get(canonicalize_name(req.name)) not in req.specifier
    ]
    assert not outside, f"run `make lock`: {lock} no longer satisfies {outside}"


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_pin_carries_its_hashes(lock: str) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", (REPO / lock).read_text().split("\n", 2)[2])
    unhashed = [entry.split()[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
    assert len(entries) > 50 and not unhashed


def test_the_image_gets_the_versions_the_tests_ran_on() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    differ = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert not differ, f"run `make lock`: image and development environment disagree on {differ}"
