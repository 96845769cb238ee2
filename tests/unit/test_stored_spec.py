"""The run folder's spec.yaml and model-code copy (`compiler/runs/stored_spec.py`): the code copied whole
under `code/<i>/<name>/` and named relative to spec.yaml, comments and style kept, large code named by
its absolute folder instead, a sweep's later runs hard-linked to the first run's copy."""

from __future__ import annotations

from megaspec.compiler.runs import stored_spec
from megaspec.compiler.runs.stored_spec import store_applied
from megaspec.runtime.contract.user_code import code_sha256

FLOW = "megaspec: 1\nname: a\nmodel: {entry: 'm:build', code: [src, ../lib], vocab_size: 8}  # mine\n"
BLOCK = "megaspec: 1\nname: a\nmodel:\n  entry: m:build\n  code:\n    - src   # here\n  vocab_size: 8\n"


def code(tmp_path, name="src", text="def build():\n    pass\n"):
    folder = tmp_path / "work" / name
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "m.py").write_text(text)
    (folder / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    return folder


def test_the_code_is_copied_and_named_relative_to_the_spec_with_style_and_comments_kept(tmp_path):
    src, lib = code(tmp_path), code(tmp_path, "lib", "X = 1\n")
    store_applied(tmp_path / "run", FLOW, [src, lib])
    text = (tmp_path / "run" / "spec.yaml").read_text()
    assert "code: [code/0/src, code/1/lib]" in text and "# mine" in text and "vocab_size: 8" in text
    copies = [tmp_path / "run" / "code" / "0" / "src", tmp_path / "run" / "code" / "1" / "lib"]
    assert code_sha256(copies) == code_sha256([src, lib])
    assert not (copies[0] / "__pycache__").exists()  # what code_sha256 hashes and the image ships, no more
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")] == []  # no staging left
    store_applied(tmp_path / "again", text, copies[:1] + [lib])  # a rerun's: its first line is not said twice
    assert (tmp_path / "again" / "spec.yaml").read_text() == text
    store_applied(tmp_path / "block", BLOCK, [src])
    assert "  code:\n  - code/0/src" in (tmp_path / "block" / "spec.yaml").read_text()


def test_code_over_the_cap_is_named_by_its_folder_not_copied(tmp_path, monkeypatch):
    src = code(tmp_path)
    monkeypatch.setattr(stored_spec, "CODE_COPY_CAP", 4)
    store_applied(tmp_path / "run", FLOW.replace(", ../lib", ""), [src])
    text = (tmp_path / "run" / "spec.yaml").read_text()
    assert f"code: [{src}]" in text and "not copied: over 0 MiB" in text and not (tmp_path / "run" / "code").exists()


def test_a_sweeps_later_runs_link_the_first_runs_copy(tmp_path):
    src = code(tmp_path)
    store_applied(tmp_path / "r1", FLOW.replace(", ../lib", ""), [src])
    store_applied(tmp_path / "r2", FLOW.replace(", ../lib", ""), [src], link_from=tmp_path / "r1")
    first, second = (tmp_path / d / "code" / "0" / "src" / "m.py" for d in ("r1", "r2"))
    assert first.stat().st_ino == second.stat().st_ino and second.read_text() == "def build():\n    pass\n"


def test_a_preset_spec_is_stored_as_written(tmp_path):
    store_applied(tmp_path / "run", "megaspec: 1  # as is\nname: a\npreset: tiny\n", [])
    assert (tmp_path / "run" / "spec.yaml").read_text() == "megaspec: 1  # as is\nname: a\npreset: tiny\n"


def test_code_holding_a_credential_is_named_not_copied_and_the_value_is_written_nowhere(tmp_path):
    token = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"
    src = code(tmp_path, text=f"TOKEN = '{token}'\n")
    store_applied(tmp_path / "run", FLOW.replace(", ../lib", ""), [src])
    text = (tmp_path / "run" / "spec.yaml").read_text()
    assert f"code: [{src}]" in text and "m.py holds what looks like a Hugging Face token" in text
    assert token not in text and not (tmp_path / "run" / "code").exists()


def test_a_storage_error_while_keeping_it_is_a_warning_not_a_failure(tmp_path):
    """A real 1 MB tmpfs and 2 MB of code: the copy runs out of space; `keep_for_rerun` (what apply and a
    sweep's planning call) says so and leaves no half copy, so the caller's run goes on."""
    import subprocess

    import pytest

    from megaspec.compiler.runs.stored_spec import keep_for_rerun

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root and mount(8) needed): {mounted.stderr.strip()}")
    try:
        src = code(tmp_path)
        (src / "weights.bin").write_bytes(b"\0" * (2 << 20))
        warning = keep_for_rerun(disk / "run", FLOW.replace(", ../lib", ""), [src])
        assert warning is not None and "could not be kept" in warning and "(ENOSPC)" in warning
        assert [p.name for p in (disk / "run").iterdir()] == []  # no staging folder, no spec.yaml
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
