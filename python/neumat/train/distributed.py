"""Process-group set-up for multi-GPU (torchrun) and multi-process CPU (gloo) training.

``torchrun --nproc_per_node N -m neumat train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them,
starts the NCCL (CUDA) or gloo (CPU) process group and picks ``cuda:LOCAL_RANK``. Without
them it is a single process and touches no process group.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run."""

    rank: int
    """Global process index (0 = main: logs, validates, writes files)."""
    world_size: int
    """Number of processes."""
    local_rank: int
    """Index on this machine (the CUDA device it uses)."""
    device: torch.device
    """Device this process trains on."""

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints, bundles and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is in use."""
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` if CUDA is available else ``cpu``; else ``torch.device(name)``.

    Raises:
        RuntimeError: CUDA requested but not available.
    """
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but torch sees no CUDA device; use --set device=cpu")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the process group described by torchrun's environment (or run single-process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        log.info("process %d/%d on %s (%s)", rank, world, device, backend)
    return DistInfo(rank, world, local_rank, device)


def shutdown_distributed() -> None:
    """Leave the process group, if one was started."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_max_(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """In-place element-wise maximum of ``t`` over all processes (no-op single-process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def all_reduce_mean_(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """In-place mean of ``t`` over all processes (no-op single-process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= info.world_size
    return t


def any_process(flag: bool, info: DistInfo) -> bool:
    """True on every process if ``flag`` is True on any (e.g. the main process's time budget)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op single-process)."""
    if info.distributed:
        dist.barrier()
