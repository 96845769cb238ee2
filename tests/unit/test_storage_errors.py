"""Every errno of storage (or of the process's file table) is MS815 naming the path and the errno,
wherever it surfaces: raised directly, as the cause of a checkpoint error, or inside DCP's per-rank
failures. ENOSPC and EROFS are injected for real (tests/test_fault_outside.py, small tmpfs mounts);
EACCES cannot be produced for root and EMFILE not at a chosen write, so these are built here."""

from __future__ import annotations

import errno

import pytest

from megaspec.runtime.contract.errors import (
    STORAGE_ERRNOS,
    CheckpointError,
    StorageError,
    code_for,
    failure_message,
)


@pytest.mark.parametrize("number", sorted(STORAGE_ERRNOS))
def test_a_storage_errno_is_ms815_naming_path_and_errno(number):
    exc = OSError(number, "refused", "/runs/x/checkpoints/step-3/__0_0.distcp")
    assert code_for(exc) == StorageError.code == "MS815"
    message = failure_message(exc)
    assert errno.errorcode[number] in message and "/runs/x/checkpoints/step-3/__0_0.distcp" in message


@pytest.mark.parametrize("number", [errno.EACCES, errno.EMFILE])
def test_a_storage_errno_behind_a_checkpoint_error_is_still_ms815(number):
    try:
        try:
            raise OSError(number, "refused", "/runs/x/ranks/rank-1.json")
        except OSError as inner:
            raise CheckpointError("saving step 3 failed", stage="checkpoint") from inner
    except CheckpointError as outer:
        assert code_for(outer) == "MS815"


def test_an_oserror_of_another_kind_is_not_a_storage_failure():
    assert code_for(OSError(errno.ECONNRESET, "reset")) != "MS815"
