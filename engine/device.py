"""Pick the torch device: auto | cpu | cuda | mps."""
from __future__ import annotations

from namestudio.data.errors import NamestudioError

import torch


class DeviceError(NamestudioError, ValueError):
    pass


def available_devices() -> list[str]:
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    return devs


def resolve_device(name: str = "auto") -> tuple[torch.device, str]:
    """Returns (device, note). A device that is asked for but absent is a clear error."""
    have = available_devices()
    if name == "auto":
        pick = "cuda" if "cuda" in have else "mps" if "mps" in have else "cpu"
        return torch.device(pick), f"auto picked {pick}"
    if name not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    if name not in have:
        raise DeviceError(f"device {name!r} was asked for but is not available here "
                          f"(torch {torch.__version__}; available: {', '.join(have)})")
    return torch.device(name), ""
