"""Device, dtype and seeding. bf16 is the fast path on CPUs with AMX/AVX-512 BF16 (see the
stack notes: ~8x fp32 matmul throughput there); fp32 is the fallback elsewhere."""

from __future__ import annotations

import logging
import os
import random
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from selfspec.errors import BackendError

        raise BackendError("base.device is 'cuda' but torch sees no CUDA device")
    return device


@cache
def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    """The torch dtype for compute. ``auto``: bf16 on CUDA (if supported) and on bf16-capable CPUs."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def set_seed(seed: int) -> None:
    """Seed every RNG the pipeline touches; called by stages, never at import time."""
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def data_dir(stage: str) -> Path:
    """``data/<stage>/``: a stage's DVC-tracked data output."""
    return Path("data") / stage


def model_dir(stage: str) -> Path:
    """``models/<stage>/``: a stage's DVC-tracked model output."""
    return Path("models") / stage


def metrics_path(stage: str) -> Path:
    """``metrics/<stage>.json``: a stage's DVC metrics file."""
    return Path("metrics") / f"{stage}.json"
