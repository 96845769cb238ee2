"""The one table of the diagnostic codes that pipeline stages emit, each with its name, and the
stage a code belongs to.

Lint rules (MS2xx-MS6xx) register their code and name once, with `@rule` in `lint/rules/`. The
codes here are written by the stages themselves (reading files, `extends:`, config, suppressions,
the schema, the GPU request, internal errors); every call site names a constant from this table,
and `lint/stage_rules.py` documents each one for `megaspec explain` and SARIF. The runtime's
receipt codes (MS8xx) are named in `runtime/contract/codes.py` and documented in `lint/receipt_rules.py`.
"""

from __future__ import annotations

import enum

from megaspec.runtime.contract.codes import Code  # the type of both halves' codes


class Stage(enum.Enum):
    """Which part of the pipeline a code belongs to: a gate skips later stages after an earlier one's error."""

    SOURCE = "source"  # MS0xx: reading the files (YAML, `extends:`, config, suppression comments)
    SCHEMA = "schema"  # MS1xx: the pydantic model
    RULES = "rules"  # MS2xx-MS6xx: lint rules (MS301/MS302 are decided while the schema validates)
    RUNTIME = "runtime"  # MS8xx: receipts
    INTERNAL = "internal"  # MS9xx: bugs in megaspec


def stage_of(code: str) -> Stage:
    """`MS012` -> Stage.SOURCE. The hundreds digit is the stage."""
    hundreds = code[2:3]
    return {"0": Stage.SOURCE, "1": Stage.SCHEMA, "8": Stage.RUNTIME, "9": Stage.INTERNAL}.get(hundreds, Stage.RULES)


YAML_SYNTAX_ERROR = Code("MS001", "yaml-syntax-error")
DUPLICATE_KEY = Code("MS002", "duplicate-key")
TAB_INDENTATION = Code("MS003", "tab-indentation")
FILE_TOO_LARGE = Code("MS004", "file-too-large")
ALIAS_EXPANSION_TOO_LARGE = Code("MS005", "alias-expansion-too-large")
NESTING_TOO_DEEP = Code("MS006", "nesting-too-deep")
DOCUMENT_NOT_A_MAPPING = Code("MS007", "document-not-a-mapping")
FILE_NOT_FOUND = Code("MS008", "file-not-found")
EXTENDS_CYCLE = Code("MS009", "extends-cycle")
EXTENDS_NOT_FOUND = Code("MS010", "extends-not-found")
FILE_UNREADABLE = Code("MS011", "file-unreadable")
INVALID_CONFIG = Code("MS012", "invalid-config")
NO_SPEC_FILES = Code("MS013", "no-spec-files")
NUMBER_TOO_LARGE = Code("MS014", "number-too-large")
EXTENDS_INVALID_PATH = Code("MS015", "extends-invalid-path")
UNUSED_SUPPRESSION = Code("MS090", "unused-suppression")
UNKNOWN_CODE_IN_SUPPRESSION = Code("MS091", "unknown-code-in-suppression")
MALFORMED_SUPPRESSION = Code("MS092", "malformed-suppression")
SCHEMA_ERROR = Code("MS100", "schema-error")
UNKNOWN_KEY = Code("MS101", "unknown-key")
MISSING_KEY = Code("MS102", "missing-key")
WRONG_TYPE = Code("MS103", "wrong-type")
OUT_OF_RANGE = Code("MS104", "out-of-range")
INVALID_CHOICE = Code("MS105", "invalid-choice")
INVALID_FORMAT = Code("MS106", "invalid-format")
UNKNOWN_GPU_TYPE = Code("MS301", "unknown-gpu-type")
GPU_COUNT_OVER_NODE_LIMIT = Code("MS302", "gpu-count-over-node-limit")
GENERATED_CODE_DOES_NOT_PARSE = Code("MS901", "generated-code-does-not-parse")
INTERNAL_ERROR = Code("MS902", "internal-error")

STAGE_CODES: dict[str, Code] = {c.code: c for c in globals().copy().values() if isinstance(c, Code)}

# The exit status of every command: 0 clean (warnings allowed), 1 errors found or a run that failed,
# 2 a usage error (a missing file, an extra not installed), 3 an internal error, 130 interrupted by
# Ctrl-C (a run stopped by another signal exits 128 + the signal: `commands/run_output.py`).
EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
