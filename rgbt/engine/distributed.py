"""Process-group helpers for ``torchrun`` data-parallel training and sharded inference.

Under ``torchrun`` the environment carries ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a plain
``python``/``rgbt`` launch is a world of one and every helper degrades to a no-op.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    """Number of processes (1 without ``torchrun``)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else int(
        os.environ.get("WORLD_SIZE", 1)
    )


def rank() -> int:
    """This process's global rank (0 without ``torchrun``)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", 0))


def is_main_process() -> bool:
    """True on rank 0, the process that writes logs, checkpoints and results."""
    return rank() == 0


def init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by ``torchrun``; returns whether training is distributed.

    NCCL is used for CUDA devices, Gloo otherwise (so DDP also runs on CPU for testing).
    """
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    """Wait for every process (no-op in a world of one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(indices: list[int]) -> list[int]:
    """The slice of ``indices`` this rank handles (round robin, so shards differ by at most one)."""
    return indices[rank() :: world_size()]
