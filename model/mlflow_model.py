"""MLflow "models from code" entry point: MLflow runs this file to build the pyfunc model on load.

Logging a file instead of a pickled Python object keeps the MLflow model readable and avoids
CloudPickle; the fitted scikit-learn pipeline itself travels as the registry's pipeline artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel, PythonModelContext

from pigeonhole.model.predict import Predictor
from pigeonhole.model.registry import PIPELINE_ARTIFACT


class ListingCategoryModel(PythonModel):
    """The MLflow pyfunc face of :class:`Predictor`; ``params={'k': 5}`` changes the list length.

    ``k`` defaults to the value in the model's signature, which training sets from ``top_k``.
    """

    def __init__(self) -> None:
        self.predictor: Predictor | None = None

    def load_context(self, context: PythonModelContext) -> None:
        self.predictor = Predictor.load(Path(context.artifacts[PIPELINE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.predictor is None:
            self.load_context(context)
        assert self.predictor is not None
        return self.predictor.suggest(model_input, k=int((params or {})["k"]))


set_model(ListingCategoryModel())
