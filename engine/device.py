"""Pick the torch device: auto | cpu | cuda | mps."""
from __future__ import annotations

import dataclasses

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


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """A CUDA rank trains on its own GPU (cuda:LOCAL_RANK); other devices are shared."""
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DeviceError(f"rank {local_rank} on this node has no GPU of its own ({count} here); "
                          f"start at most {count} ranks per node")
    return torch.device("cuda", local_rank)


TRAIN_BYTES_PER_PARAM = 16     # float32 weights, their gradients and AdamW's two moments


def memory_of(device: torch.device) -> int | None:
    """The bytes a device holds in all (a GPU's memory, the machine's RAM for the CPU); None when unknown (MPS)."""
    import os
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):   # not POSIX
            return None
    return None


def check_fits(n_params: int, device: torch.device) -> None:
    """DeviceError, one line, for a model whose training state cannot fit the device's memory at all (every
    option in range, but --hidden 8192 --layers 16 --members 16 is 400 billion parameters: the allocator's
    "can't allocate memory", or the machine swapping until the OOM killer came)."""
    total = memory_of(device)
    need = n_params * TRAIN_BYTES_PER_PARAM
    if total is not None and need > total:
        raise DeviceError(f"the model has {n_params:,} parameters: training it needs about {need / 2**30:,.0f} GiB "
                          f"(weights, gradients and optimizer state) and {device.type} has {total / 2**30:,.0f} GiB; "
                          "give a smaller --hidden, --layers, --embed or --members")


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """Mixed precision for a device: bf16 where the GPU has it (no loss scaling needed), else fp16 (with a
    GradScaler); None off CUDA or when turned off."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_device(data, device: torch.device, labels: bool = True):
    """The encoded tensors moved to the device once, so a batch is an index into device memory rather than
    a copy per step. Lengths stay on the CPU (pack_padded_sequence wants them there). ``labels=False``
    keeps the labels on the CPU too (evaluation compares them with CPU predictions)."""
    moved = {}
    for f in dataclasses.fields(data):
        t = getattr(data, f.name)
        keep = f.name == "lengths" or (f.name == "y" and not labels)
        moved[f.name] = t if keep or not isinstance(t, torch.Tensor) else t.to(device)
    return dataclasses.replace(data, **moved)
