"""megaspec runtime: runs a Plan (FSDP2 training, benchmarks, validation) and writes a receipt.

Laid out by stage, each folder importing only the ones before it: `contract/` (what the compiler
shares: vocabulary, facts, the Plan, the Receipt, run-folder formats) -> `rank/` -> `state/` ->
`train/` -> `evidence/` -> `launch/`. Never imports the compiler.
"""

__version__ = "0.1.0"
