from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class TrackingParams:
    """MLflow experiment and registry names; the tracking URI only comes from MLFLOW_TRACKING_URI."""

    experiment: str = knob("", help="MLflow experiment; empty: selfspec-<domain>")
    registered_model: str = knob("", help="registry name; empty: <domain>-expert")
