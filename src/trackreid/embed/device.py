"""``--device auto|cpu|cuda[:N]|mps`` -> a torch device, with clear errors."""

from __future__ import annotations

import re

import torch

from trackreid.errors import InputError


def resolve_device(spec: str = "auto") -> torch.device:
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?|\d+", spec):
        if spec.isdigit():
            spec = f"cuda:{spec}"
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available on this machine "
                             "(no NVIDIA driver or a CPU build of PyTorch); use --device cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device(spec)
    if spec == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError("--device mps: Apple Metal is not available here; use --device cpu")
        return torch.device("mps")
    raise InputError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
