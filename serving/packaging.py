"""`pigeonhole build`: a Bento holding the service, its code and the champion model, ready for Docker.

The champion's fitted pipeline is copied into BentoML's model store and packed into the Bento, and
the Bento's environment says ``PIGEONHOLE_MODEL_SOURCE=bento``, so the image serves exactly the
version it was built with, even without a registry. (Set ``PIGEONHOLE_MODEL_SOURCE=registry`` in
the deployment to follow the champion alias instead.) Packages are not locked (``lock_packages:
false``): building must work offline, and ``pyproject.toml`` already bounds every dependency.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import mlflow

from model.predict import PIPELINE_FILE
from model.registry import CHAMPION, connect, require_alias
from pigeonhole.settings import Settings
from serving.engine import BENTO_MODEL_VERSION_KEY
from serving.process import SERVICE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pigeonhole/**/*.py", "model/**/*.py", "serving/**/*.py", "monitoring/**/*.py"]
# installs the `pigeonhole` command in the image, for the drift CronJob and the retraining Job
IMAGE_SETUP = "serving/image_setup.sh"


def use_bentoml_home(settings: Settings) -> Path:
    """Keep BentoML's model and Bento stores under the state folder, like everything else."""
    home = Path(os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml")))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return home


def runtime_requirements() -> list[str]:
    """The project's own dependency list, so the image and a local install never disagree."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


@dataclass
class BuiltBento:
    tag: str
    model_version: str
    path: Path

    @property
    def dockerfile(self) -> Path:
        return self.path / "env" / "docker" / "Dockerfile"


def build_bento(settings: Settings) -> BuiltBento:
    use_bentoml_home(settings)
    import bentoml
    from bentoml._internal.bento.build_config import BentoEnvSchema  # bentoml.build's envs= takes these

    champion = require_alias(connect(settings), settings, CHAMPION)
    version = str(champion.version)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}"))
    with bentoml.models.create(
        name=settings.model_name,
        labels={"source": "mlflow-registry"},
        metadata={BENTO_MODEL_VERSION_KEY: version, "tracking_uri": settings.resolved_tracking_uri},
    ) as stored:
        shutil.copy(local / "artifacts" / PIPELINE_FILE, Path(stored.path) / PIPELINE_FILE)
    bento = bentoml.bentos.build(
        SERVICE,
        name="pigeonhole",
        labels={"model_version": version},
        include=SOURCES,
        envs=[
            BentoEnvSchema(name="PIGEONHOLE_MODEL_SOURCE", value="bento"),
            BentoEnvSchema(name="BENTOML_DO_NOT_TRACK", value="True"),
        ],
        python={"packages": runtime_requirements(), "lock_packages": False},
        docker={"python_version": "3.11", "setup_script": IMAGE_SETUP},
        models=[str(stored.tag)],
        build_ctx=str(PROJECT_ROOT),
    )
    return BuiltBento(str(bento.tag), version, Path(bento.path))
