"""A merged adapter of the experts, the issue's cheap baseline beside the routed mixture: PEFT's
``add_weighted_adapter`` (``linear``: weighted sums of the A and of the B matrices; ``ties``: TIES
trimming to ``density`` and sign election on each), saved as a plain PEFT adapter folder.

Both need one LoRA rank across the experts (PEFT's rule; checked here first, naming the ranks).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from selfspec.errors import ConfigError

MERGED = "merged"


def merge_experts(
    base_dir: Path, adapters: dict[str, Path], method: str, dest: Path,
    weights: list[float] | None = None, density: float = 0.5,
) -> Path:  # fmt: skip
    """Write the ``method`` merge of ``adapters`` (name -> folder) to ``dest``; weights default to 1/n."""
    from selfspec.loading import load_experts

    if method not in ("linear", "ties"):
        raise ConfigError(f"mixture.merge: {method!r} is not one of ['linear', 'ties']")
    ranks = {
        name: json.loads((path / "adapter_config.json").read_text())["r"] for name, path in adapters.items()
    }
    if len(set(ranks.values())) > 1:
        raise ConfigError(f"mixture.merge: {method} needs one LoRA rank across the experts, got {ranks}")
    weights = list(weights) if weights is not None else [1 / len(adapters)] * len(adapters)
    model = load_experts(base_dir, adapters, "float32", "cpu")
    model.add_weighted_adapter(list(adapters), weights, adapter_name=MERGED, combination_type=method,
                               density=density if method == "ties" else None)  # fmt: skip
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.exists() else None) as tmp:
        model.save_pretrained(tmp, selected_adapters=[MERGED], safe_serialization=True)
        _sort_target_modules(Path(tmp) / MERGED / "adapter_config.json")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(Path(tmp) / MERGED, dest)  # peft saves a non-default adapter in a sub-folder
    return dest


def _sort_target_modules(config_path: Path) -> None:
    """peft writes ``target_modules`` from a set: sorted, the same merge writes the same bytes."""
    config = json.loads(config_path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
