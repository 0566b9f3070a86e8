"""Where models train and run (``teacher.device``), and in which precision: one code path for
every stage (encoder training, NAS proxies, KD, causal-LM LoRA, inference, benchmark).

``device: auto`` takes the GPU when torch sees one and the CPU otherwise; asking for ``cuda``
on a machine without one is a user error, not a silent fallback. On a GPU the forward passes
run under autocast in bf16 where the card supports it (Ampere and later), else fp16 (training
then needs a gradient scaler, see :func:`grad_scaler`); on the CPU everything stays fp32.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from distillery.core.io import UserError

DeviceChoice = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto", key: str = "teacher.device") -> torch.device:
    """The torch device of a ``device`` param.

    Args:
        choice: ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda`` or ``cuda:<index>``.
        key: the params key named in error messages.

    Raises:
        UserError: an unknown value, or ``cuda`` asked for where torch sees no GPU.
    """
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or (choice.startswith("cuda:") and choice[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UserError(f"{key}: got {choice!r}, but torch sees no CUDA device here "
                            "(torch.cuda.is_available() is False); use 'auto' or 'cpu'")
        index = int(choice[5:]) if ":" in choice else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"{key}: got {choice!r}, but only {torch.cuda.device_count()} "
                            "CUDA device(s) are visible")
        return torch.device(choice)
    raise UserError(f"{key}: got {choice!r}, expected one of {', '.join(DEVICES)} "
                    "(or cuda:<index>)")


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The compute dtype of forward passes on ``device``: bf16 on GPUs that support it, else
    fp16 on a GPU; fp32 on the CPU (bf16 autocast on a laptop CPU is slower, not faster)."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to :func:`autocast_dtype` on a GPU; a no-op on the CPU."""
    dtype = autocast_dtype(device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler that is active only for fp16 autocast (bf16 and fp32 need none)."""
    enabled = autocast_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type if enabled else "cpu", enabled=enabled)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (cpu for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
