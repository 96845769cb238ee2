"""The import path generated seeding apps compiled before the runtime's move use; the seed's format
lives in `contract/seed_file.py` and its making in `train/seed_make.py`. Goes when the templates
import the new paths."""

from .contract.seed_file import seed_path
from .train.seed_make import make_seed_in_new_process

__all__ = ["make_seed_in_new_process", "seed_path"]
