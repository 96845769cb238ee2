"""`megaspec rerun RUN_DIR`, for real on this machine: a run applied with a base and `--steps 5` is run
again from the spec text stored in its folder (bases folded in), with the same flags, as a new run that
points at it; its losses are bit-identical and `receipts compare` shows no setting that differs."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs.manifest import read_manifest
from megaspec.runtime.contract.plan import read_plan
from megaspec.runtime.contract.receipt import read_receipt
from tests.conftest import run_megaspec
from tests.unit.test_manifest import make_manifest

BASE = "megaspec: 1\nname: base\ntarget: local\nresources: {ranks: 2}\npreset: tiny\n" \
       "train: {steps: 8, warmup_steps: 1, global_batch: 8, micro_batch: 2, seq_len: 32}\n"
SPEC = "megaspec: 1\nname: again\nextends: _base.yaml\ntrain: {lr: 2.0e-3}\n"


@pytest.mark.slow
def test_a_rerun_repeats_the_spec_and_flags_and_gives_bit_identical_losses(tmp_path):
    (tmp_path / "_base.yaml").write_text(BASE)
    (tmp_path / "again.yaml").write_text(SPEC)
    first = run_megaspec("apply", "again.yaml", "--steps", "5", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (original,) = (tmp_path / "runs").iterdir()
    stored = (original / "spec.yaml").read_text()
    assert "extends" not in stored and "lr: 0.002" in stored and "ranks: 2" in stored  # the base folded in
    (tmp_path / "_base.yaml").write_text(BASE.replace("steps: 8", "steps: 9"))  # the files may change since
    again = run_megaspec("rerun", str(original.relative_to(tmp_path)), "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    (new,) = [d for d in (tmp_path / "runs").iterdir() if d != original]
    assert f"rerun of {original.name}" in again.stdout
    manifest, receipt = read_manifest(new), read_receipt(new / "receipt.json")
    assert manifest.rerun_of == receipt.rerun_of == original.name and manifest.flags == {"steps": 5}
    before = read_receipt(original / "receipt.json")
    assert receipt.losses == before.losses and len(receipt.losses) == 5  # bit for bit, with --steps 5 again
    assert read_plan(new / "plan.json").sha256() == read_plan(original / "plan.json").sha256()
    compared = run_megaspec("receipts", "compare", str(original), str(new), cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "settings that differ\n  (none)" in compared.stdout and "rerun of" in compared.stdout


def test_a_run_folder_without_the_stored_spec_is_refused_with_a_reason(tmp_path):
    from megaspec.compiler.runs import manifest as mf

    mf.write_manifest(tmp_path / "old", make_manifest("ok"))
    result = CliRunner().invoke(cli, ["rerun", str(tmp_path / "old")])
    assert result.exit_code == 1 and "holds no spec.yaml" in result.output and "Traceback" not in result.output


def test_rerun_of_a_folder_that_is_not_a_run_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["rerun", str(tmp_path)])
    assert result.exit_code == 1 and "is not a run directory" in result.output


OWN_SPEC = """\
megaspec: 1
name: mine
target: local
resources: {ranks: 2}
model:
  entry: ownmodels.gpt:build
  code: [../src]   # the model code, beside the specs folder
  args: {vocab_size: 64, d_model: 32, n_layers: 2, n_heads: 4, max_seq_len: 16}
  vocab_size: 64
train: {steps: 4, warmup_steps: 1, global_batch: 8, micro_batch: 2, seq_len: 16, precision: fp32}
"""


@pytest.mark.slow
def test_a_rerun_of_the_users_model_runs_the_code_it_ran_from_its_folder_wherever_it_is_run_from(tmp_path):
    """`model.code` is relative to the spec: the run folder keeps a copy of the code that spec.yaml names
    relative to itself, so a rerun from another folder, after the working copy changed, runs the code the
    run ran (bit-identical losses, the same plan hash); a copy changed since is refused before launch."""
    import shutil

    from tests.conftest import REPO_ROOT

    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "examples" / "own-model" / "src", project / "src")
    (project / "specs").mkdir()
    (project / "specs" / "mine.yaml").write_text(OWN_SPEC)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "model"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    first = run_megaspec("apply", "specs/mine.yaml", "--no-progress", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    (original,) = (project / "runs").iterdir()
    stored = (original / "spec.yaml").read_text()
    assert "code: [code/0/src]" in stored and "# the model code, beside the specs folder" in stored
    model_file = project / "src" / "ownmodels" / "gpt.py"
    assert (original / "code" / "0" / "src" / "ownmodels" / "gpt.py").read_bytes() == model_file.read_bytes()
    model_file.write_text(model_file.read_text().replace("def build(", "SCALE = 2.0\n\n\ndef build("))  # edited since

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_megaspec("rerun", str(original), "--runs-dir", "again", "--no-progress", cwd=elsewhere)
    assert again.returncode == 0, again.stdout + again.stderr
    (new,) = (elsewhere / "again").iterdir()
    assert read_receipt(new / "receipt.json").losses == read_receipt(original / "receipt.json").losses
    before, after = read_plan(original / "plan.json"), read_plan(new / "plan.json")
    assert after.sha256() == before.sha256() and after.model.user.code_sha256 == before.model.user.code_sha256
    assert after.model.user.code == [str(original / "code" / "0" / "src")]
    assert (after.run.git_sha, after.run.git_dirty) == (before.run.git_sha, False) and before.run.git_sha
    compared = run_megaspec("receipts", "compare", str(original), str(new), cwd=elsewhere)
    assert "settings that differ\n  (none)" in compared.stdout, compared.stdout  # where the code lies is no setting

    copy = original / "code" / "0" / "src" / "ownmodels" / "gpt.py"
    copy.write_text(copy.read_text() + "\n# changed\n")
    refused = run_megaspec("rerun", str(original), "--runs-dir", "again", "--no-progress", cwd=elsewhere)
    assert refused.returncode == 1 and "is not the code the run ran" in refused.stderr, refused.stdout + refused.stderr
    assert len(list((elsewhere / "again").iterdir())) == 1  # nothing launched


@pytest.mark.slow
def test_a_rerun_refuses_a_prepared_data_folder_that_no_longer_holds_the_runs_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 400)
    data = tmp_path / "shards"
    assert run_megaspec("data", "prepare", str(corpus), "--tokenizer", "bytes", "-o", str(data), "-j", "1",
                        cwd=tmp_path).returncode == 0
    spec = ("megaspec: 1\nname: mine\ntarget: local\nresources: {ranks: 1}\npreset: tiny\n"
            "train: {steps: 2, warmup_steps: 1, global_batch: 2, micro_batch: 2, seq_len: 32}\n"
            f"data: {{source: shards, path: {data}}}\n")
    (tmp_path / "mine.yaml").write_text(spec)
    first = run_megaspec("apply", "mine.yaml", "--no-progress", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (original,) = (tmp_path / "runs").iterdir()
    corpus.write_text("a different corpus of other words entirely\n" * 400)
    shutil_rmtree(data)
    assert run_megaspec("data", "prepare", str(corpus), "--tokenizer", "bytes", "-o", str(data), "-j", "1",
                        cwd=tmp_path).returncode == 0
    refused = run_megaspec("rerun", str(original), "--no-progress", cwd=tmp_path)
    assert refused.returncode == 1 and "is not the data the run read" in refused.stderr, refused.stdout + refused.stderr
    assert len(list((tmp_path / "runs").iterdir())) == 1  # nothing launched


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)


@pytest.mark.slow
def test_a_full_disk_while_keeping_the_code_for_rerun_is_said_and_the_run_goes_on(tmp_path):
    """The copy of the model code is the first large write into a new run folder: on a full disk (a real
    3 MB tmpfs, 4 MB of code) it is said as a warning, nothing half-copied is left, and the run trains."""
    import shutil

    from tests.conftest import REPO_ROOT

    runs = tmp_path / "runs"
    runs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(runs)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root and mount(8) needed): {mounted.stderr.strip()}")
    try:
        shutil.copytree(REPO_ROOT / "examples" / "own-model" / "src", tmp_path / "src")
        (tmp_path / "src" / "weights.bin").write_bytes(b"\0" * (4 << 20))
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "mine.yaml").write_text(OWN_SPEC.replace("train: {steps: 4", "train: {steps: 2"))
        done = run_megaspec("apply", "specs/mine.yaml", "--no-progress", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "could not be kept" in done.stderr and "ENOSPC" in done.stderr and "Traceback" not in done.stderr
        (run_dir,) = runs.iterdir()
        assert read_manifest(run_dir).state == "ok" and not (run_dir / "code").exists()
        assert [p.name for p in run_dir.iterdir() if p.name.startswith(".code")] == []  # no half copy left
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)
