"""MLflow "models from code" entry point: MLflow runs this file to build the pyfunc model on load.

Logging a file instead of a pickled Python object keeps the MLflow model readable and avoids
CloudPickle; the fitted scikit-learn pipeline itself travels as the ``pipeline`` artifact.
"""

from mlflow.models import set_model

from model.predict import ListingCategoryModel

set_model(ListingCategoryModel())
