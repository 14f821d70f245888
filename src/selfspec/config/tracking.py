from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class TrackingParams:
    """MLflow experiment and registry names; the tracking URI only comes from MLFLOW_TRACKING_URI."""

    experiment: str = knob("", help="MLflow experiment; empty: selfspec-<domain>")
    registered_model: str = knob("", help="registry name; empty: <domain>-expert")
    register: bool = knob(True, help="register the adapter as a model version with alias 'candidate'")
    log_model: bool = knob(True, help="log a servable mlflow.transformers model (base from the local folder)")
    sample_records: int = knob(20, ge=0, help="training records logged as an artifact sample")
