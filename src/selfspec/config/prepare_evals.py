from __future__ import annotations

from dataclasses import dataclass

from selfspec.config._fields import knob

# The biomedical suite: every data set of evals/sources.yaml.
DEFAULT_DATASETS = [
    "pubmedqa", "medmcqa", "medqa_4options",
    "mmlu_anatomy", "mmlu_clinical_knowledge", "mmlu_college_biology",
    "mmlu_college_medicine", "mmlu_medical_genetics", "mmlu_professional_medicine",
    "ncbi_disease", "jnlpba", "chemprot",
]  # fmt: skip


@dataclass
class PrepareEvalsParams:
    """Fetching and converting evaluation data sets (issue: benchmark)."""

    sources: str = knob("evals/sources.yaml", help="public source and checksum of each data set")
    datasets: list[str] = knob(factory=lambda: list(DEFAULT_DATASETS), help="names in the sources file")
    # Offline, only the mirror's data sets can be read: an unavailable one is listed in the
    # manifest with its reason and its tasks are skipped (with a warning) by the evaluate stages.
    allow_missing: bool = knob(True, help="false: any unavailable data set fails the stage")

    def check(self) -> None:
        if not self.datasets:
            raise ValueError("datasets: empty; name at least one data set of the sources file")
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets: duplicate names in {self.datasets}")
