"""Provenance for the receipt: code revision, versions, Modal placement, requested vs observed GPU.

A result whose provenance changed is a new comparison class, not a regression; these fields are
what lets a reader tell the two apart.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import socket

from ..contract.git_revision import git_revision
from ..contract.gpus import meets
from ..contract.plan import Plan
from ..contract.receipt import Hardware, Provenance

_MODAL_ENV = {"modal_task_id": "MODAL_TASK_ID", "modal_region": "MODAL_REGION",
              "modal_cloud_provider": "MODAL_CLOUD_PROVIDER", "modal_image_id": "MODAL_IMAGE_ID"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_versions() -> dict[str, str | None]:
    try:
        import torch
    except ImportError:
        return {"cuda": None, "nccl": None}
    nccl = None
    if torch.cuda.is_available():
        nccl = ".".join(str(v) for v in torch.cuda.nccl.version())
    return {"cuda": torch.version.cuda, "nccl": nccl}


def collect_provenance(plan: Plan) -> Provenance:
    sha, dirty = (plan.run.git_sha, plan.run.git_dirty) if plan.run.git_sha else git_revision(plan.run.spec_path)
    modal = {field: os.environ.get(var) for field, var in _MODAL_ENV.items()}
    image = hashlib.sha256(plan.modal.image.model_dump_json().encode()).hexdigest()
    return Provenance(git_sha=sha, git_dirty=dirty, megaspec=_version("megaspec"), torch=_version("torch"),
                      modal=_version("modal"), python=platform.python_version(), host=socket.gethostname(),
                      image_sha256=image, **torch_versions(), **modal)


def observed_devices() -> list[str]:
    """Every visible device's name, or ["cpu"]."""
    import torch

    if not torch.cuda.is_available():
        return ["cpu"]
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def device_name(device) -> str:
    """The name of one torch device: the CUDA product name, or "cpu"."""
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def describe_hardware(plan: Plan, devices: list[str]) -> Hardware:
    requested = plan.resources.gpu_type
    gpus = [d for d in devices if d != "cpu"]
    matches = None if requested is None or not gpus else all(meets(requested, d) for d in gpus)
    return Hardware(requested_gpu=requested, requested_gpu_count=plan.resources.gpu_count,
                    requested_exact=plan.resources.exact, observed_devices=devices,
                    observed_gpu_count=len(gpus), matches_request=matches)
