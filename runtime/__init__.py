"""megaspec runtime: runs a Plan (FSDP2 training, benchmarks, validation) and writes a receipt.

Never imports the compiler. `plan.py` and `receipt.py` are pure pydantic: the contract with the compiler.
"""

__version__ = "0.1.0"
