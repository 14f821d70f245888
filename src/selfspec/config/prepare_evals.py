from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob


@dataclass
class PrepareEvalsParams:
    """Fetching and converting evaluation data sets (issue: benchmark)."""

    sources: str = knob("evals/sources.yaml", help="public source and checksum of each data set")
    # null: the domain's suite (<base.suites_dir>/<base.domain>.yaml)
    datasets: list[str] | None = knob(None, help="names in the sources file; null: the domain's")
    # Offline, only the mirror's data sets can be read: an unavailable one is listed in the
    # manifest with its reason and its tasks are skipped (with a warning) by the evaluate stages.
    allow_missing: bool = knob(True, help="false: any unavailable data set fails the stage")

    def check(self) -> None:
        if self.datasets is None:
            return
        if not self.datasets:
            raise ValueError("datasets: empty; name at least one data set of the sources file")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets: duplicate names in {self.datasets}")
