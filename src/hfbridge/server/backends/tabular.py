"""Tabular classification and regression: scikit-learn estimators, as the hosted API serves
them (skops folders: a ``config.json`` naming the feature columns and the pickled model).

The hosted API answers one prediction per row, in row order. Columns are matched by name, so
their order in the request does not matter; a missing or unknown column is an error naming it
(rather than a NaN or a silently ignored column), and so is a cell that is not a number where the
model was trained on numbers.

The built-in models are real, not random: trained offline, in a second, on the datasets that
ship inside scikit-learn itself (Fisher's iris flowers; the diabetes progression study), so
their predictions mean something.

A pickled model runs arbitrary code when loaded: serve only folders you built or trust.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ...tasks import Task
from . import Backend, BackendInputError, LoadContext
from ._common import parse_parameters

__all__ = ["LOADERS", "TINY_BUILDERS", "TabularBackend"]

#: the file name skops and the hosted API's scikit-learn image use by default
MODEL_FILE = "sklearn_model.joblib"


class TabularBackend(Backend):
    tasks = frozenset({Task.TABULAR_CLASSIFICATION, Task.TABULAR_REGRESSION})
    MAX_ROWS = 10_000

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        import joblib

        folder = Path(location)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("sklearn", {})
        self.columns: list[str] = list(config.get("columns") or [])
        if not self.columns:
            raise ValueError(f"{folder}/config.json names no feature columns (sklearn.columns)")
        self.model = joblib.load(folder / (config.get("model", {}).get("file") or MODEL_FILE))
        self.task = Task(config.get("task", Task.TABULAR_CLASSIFICATION.value))
        self.tasks = frozenset({self.task})
        self.numeric = bool(config.get("numeric_features", True))

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        parse_parameters(task, parameters)
        if task is not self.task:
            raise BackendInputError("task", f"this model does {self.task.value}, not {task.value}")
        table: dict[str, list[Any]] = inputs["data"]
        missing = [name for name in self.columns if name not in table]
        unknown = [name for name in table if name not in self.columns]
        if missing or unknown:
            problem = "; ".join(part for part in (
                f"missing column(s) {missing}" if missing else "",
                f"unknown column(s) {unknown}" if unknown else "",
            ) if part)
            raise BackendInputError("inputs.data", f"{problem}; this model reads {self.columns}")
        rows = len(table[self.columns[0]])
        if rows > self.MAX_ROWS:
            raise BackendInputError("inputs.data", f"{rows} rows; this server predicts at most {self.MAX_ROWS} per request")
        matrix = [[self._cell(table, name, row) for name in self.columns] for row in range(rows)]
        predictions = self.model.predict(matrix).tolist()
        if task is Task.TABULAR_REGRESSION:
            return [float(value) for value in predictions]
        return predictions  # the model's own class values (strings for the built-in model)

    def _cell(self, table: dict[str, list[Any]], column: str, row: int) -> Any:
        value = table[column][row]
        if not self.numeric:
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or math.isnan(number):
            raise BackendInputError(f"inputs.data.{column}.{row}", f"must be a number, got {value!r}")
        return number


def _save(target: Path, model: Any, columns: list[str], task: Task, description: str) -> None:
    import joblib

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, target / MODEL_FILE)
    config = {"sklearn": {"columns": columns, "model": {"file": MODEL_FILE}, "task": task.value}}
    (target / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (target / "README.md").write_text(description + "\n", encoding="utf-8")


#: iris's feature names without their "(cm)" units, as a user would type them
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def build_iris_classifier(target_dir: Path) -> None:
    """A random forest on Fisher's iris flowers (150 measured flowers shipped in scikit-learn);
    real weights: it names the species from the four measurements (about 95 % accurate)."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    data = load_iris()
    model = RandomForestClassifier(n_estimators=25, max_depth=4, random_state=0)
    model.fit(data.data, [str(data.target_names[i]) for i in data.target])
    _save(target_dir, model, IRIS_COLUMNS, Task.TABULAR_CLASSIFICATION,
          "random forest on scikit-learn's iris dataset (real data): species from sepal and petal sizes in cm")


def build_diabetes_regressor(target_dir: Path) -> None:
    """Ridge regression on scikit-learn's diabetes study (442 patients): disease progression a
    year on from ten standardised measurements; real data, modest accuracy (R^2 about 0.45)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    data = load_diabetes()
    model = Ridge(alpha=0.1).fit(data.data, data.target)
    _save(target_dir, model, list(data.feature_names), Task.TABULAR_REGRESSION,
          "ridge regression on scikit-learn's diabetes dataset (real data): progression from 10 standardised features")


LOADERS = {Task.TABULAR_CLASSIFICATION: TabularBackend, Task.TABULAR_REGRESSION: TabularBackend}
#: models trained here from data that ships in a package (registry source ``builtin:NAME``)
BUILT_MODELS = {"iris-classifier": build_iris_classifier, "diabetes-regressor": build_diabetes_regressor}
