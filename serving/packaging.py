"""`pigeonhole build`: a Bento of the service and its code, ready for Docker; no model inside.

Every deployed service follows the registry's champion alias, so the image never waits for a
model: a fresh stack builds, comes up "not ready: no champion", and serves as soon as the
bootstrap (or any later promotion) moves the alias. BentoML's own convention throughout: the
Bento is built from ``serving/bentofile.yaml`` with ``bentoml.bentos.build_bentofile``.

The build context is staged as the installed layout (``pigeonhole/`` with the repository's part
folders copied in, links resolved), because BentoML copies a symbolic link's target nowhere.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pigeonhole.core.settings import Settings

PACKAGE = Path(__file__).parent.parent  # pigeonhole/, as imported (its parts are links in a checkout)
CHECKOUT = Path(__file__).resolve().parents[1]
REQUIREMENTS = CHECKOUT / "requirements.txt"
LOCK = CHECKOUT / "requirements.lock"


def use_bentoml_home(settings: Settings) -> Path:
    """Keep BentoML's model and Bento stores under the state folder, like everything else."""
    home = Path(os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml")))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return home


@dataclass
class BuiltBento:
    tag: str
    path: Path

    @property
    def dockerfile(self) -> Path:
        return self.path / "env" / "docker" / "Dockerfile"

    @property
    def requirements(self) -> Path:
        """What the image's Dockerfile installs (`uv pip install -r`): the hashed lock, not the ranges."""
        return self.path / "env" / "python" / "requirements.txt"


def build_bento(settings: Settings) -> BuiltBento:
    use_bentoml_home(settings)
    import bentoml

    with tempfile.TemporaryDirectory() as context:
        staged = Path(context)
        shutil.copytree(PACKAGE, staged / "pigeonhole", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REQUIREMENTS, staged / "requirements.txt")
        bento = bentoml.bentos.build_bentofile(
            str(staged / "pigeonhole" / "serving" / "bentofile.yaml"), build_ctx=context
        )
    built = BuiltBento(str(bento.tag), Path(bento.path))
    shutil.copy(LOCK, built.requirements)
    return built
