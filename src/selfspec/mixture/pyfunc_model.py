"""The MLflow pyfunc of a mixture, logged as "models from code": MLflow stores this file (no pickle)
and runs it when the model is loaded (``mlflow.pyfunc.load_model``, ``mlflow models serve``).

Input: a list of prompts (or a one-column frame). Output: one row per prompt with the ``expert`` the
router chose, its ``probability`` and the generated ``text``. Generation settings come per request in
``params`` (max_new_tokens, do_sample, temperature, top_p). The base model is the local folder named
by the model config's ``base_dir`` (recorded by the ``mixture`` stage), as for the single expert.
"""

from __future__ import annotations

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class MixturePyfunc(PythonModel):
    def load_context(self, context) -> None:
        from selfspec.mixture.serving import MixtureServer

        config = context.model_config or {}
        self.server = MixtureServer(
            context.artifacts["mixture"], config["base_dir"], config.get("dtype", "float32")
        )

    def predict(self, context, model_input, params=None):
        import pandas as pd

        rows = self.server.predict(_prompts(model_input), **(params or {}))
        return pd.DataFrame(rows, columns=["expert", "probability", "text"])


def _prompts(model_input) -> list[str]:
    """Prompts from what MLflow passes: a list, a Series, or a frame whose first column holds them."""
    if hasattr(model_input, "columns"):
        model_input = model_input[model_input.columns[0]]
    if isinstance(model_input, str):
        return [model_input]
    return [str(p) for p in list(model_input)]


set_model(MixturePyfunc())
