"""`pigeonhole build`: a Bento holding the service, its code and the champion model, ready for Docker.

BentoML's own convention throughout: the champion's MLflow model is imported into BentoML's model
store (``bentoml.mlflow.import_model``) under the name the Bento's ``bentofile.yaml`` lists, and
the Bento is built from that file (``bentoml.bentos.build_bentofile``). The Bento's environment
says ``PIGEONHOLE_MODEL_SOURCE=bento``, so the image serves exactly the version it was built with.

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
from pigeonhole.model.registry import CHAMPION, connect, require_alias, version_uri
from pigeonhole.serving.engine import BENTO_MODEL, BENTO_MODEL_NAME_KEY, BENTO_MODEL_VERSION_KEY

PACKAGE = Path(__file__).parent.parent  # pigeonhole/, as imported (its parts are links in a checkout)
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"


def use_bentoml_home(settings: Settings) -> Path:
    """Keep BentoML's model and Bento stores under the state folder, like everything else."""
    home = Path(os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml")))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return home


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
    import bentoml.mlflow

    champion = require_alias(connect(settings), settings, CHAMPION)
    version = str(champion.version)
    bentoml.mlflow.import_model(
        BENTO_MODEL,
        version_uri(champion),
        labels={"source": "mlflow-registry"},
        metadata={
            BENTO_MODEL_NAME_KEY: settings.model_name,
            BENTO_MODEL_VERSION_KEY: version,
            "tracking_uri": settings.resolved_tracking_uri,
        },
    )
    with tempfile.TemporaryDirectory() as context:
        staged = Path(context)
        shutil.copytree(PACKAGE, staged / "pigeonhole", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REQUIREMENTS, staged / "requirements.txt")
        bento = bentoml.bentos.build_bentofile(
            str(staged / "pigeonhole" / "serving" / "bentofile.yaml"),
            build_ctx=context,
            labels={"model_version": version},
        )
    return BuiltBento(str(bento.tag), version, Path(bento.path))
