"""The import path generated apps compiled before the runtime's move use (`from megaspec.runtime.plan
import Plan`); the Plan lives in `contract/plan.py`. Goes when the templates import the new path."""

from .contract.plan import Plan

__all__ = ["Plan"]
