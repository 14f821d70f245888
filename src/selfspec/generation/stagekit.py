"""Moved along its seams; these names stay importable from here for older call sites:

* resume keys: ``selfspec.generation.resume`` (``partial_store``, ``model_files``)
* demonstrations and seed draws: ``selfspec.generation.demos``
* batching: ``selfspec.generation.batching``
* progress bar and output writing: ``selfspec.generation.stage_io``
"""

from __future__ import annotations

from selfspec.generation.batching import length_sorted_batches
from selfspec.generation.demos import nearest_seeds, sample_seeds
from selfspec.generation.resume import model_files, partial_store
from selfspec.generation.stage_io import finish, progress

__all__ = ["finish", "length_sorted_batches", "model_files", "nearest_seeds", "partial_store", "progress",
           "sample_seeds"]  # fmt: skip
