"""The user's code as both halves see it: which file a module is, and the sha256 of the folders."""

from __future__ import annotations

from megaspec.runtime.contract.user_code import code_sha256, module_file


def _tree(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_the_code_hash_covers_paths_and_bytes_of_every_file_and_nothing_else(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _tree(a, {"pkg/m.py": b"x = 1\n", "pkg/data.json": b"{}"})
    _tree(b, {"pkg/data.json": b"{}", "pkg/m.py": b"x = 1\n", "pkg/__pycache__/m.cpython-311.pyc": b"\0"})
    assert code_sha256([a]) == code_sha256([b])  # creation order and bytecode caches do not count
    (b / "pkg" / "data.json").write_bytes(b"[]")
    assert code_sha256([a]) != code_sha256([b])  # a file that is not Python counts
    (b / "pkg" / "data.json").write_bytes(b"{}")
    (b / "pkg" / "m.py").rename(b / "pkg" / "n.py")
    assert code_sha256([a]) != code_sha256([b])  # so does a rename


def test_the_first_folder_holding_the_module_wins(tmp_path):
    _tree(tmp_path / "one", {"pkg/__init__.py": b""})
    _tree(tmp_path / "two", {"pkg/__init__.py": b"", "other/mod.py": b""})
    folders = [tmp_path / "one", tmp_path / "two"]
    assert module_file(folders, "pkg") == tmp_path / "one" / "pkg" / "__init__.py"
    assert module_file(folders, "other.mod") == tmp_path / "two" / "other" / "mod.py"
    assert module_file(folders, "pkg.absent") is None


def test_plan_counts_the_users_model_on_the_meta_device_or_says_why_not(tmp_path, monkeypatch):
    from megaspec.compiler.codegen.user_model_count import count
    from tests.conftest import REPO_ROOT
    from tests.runtime.conftest import make_plan

    model = {"entry": "ownmodels.gpt:build", "code": [str(REPO_ROOT / "examples" / "own-model" / "src")],
             "args": {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 16},
             "vocab_size": 64}
    plan = make_plan(preset=None, model=model, seq_len=16)
    counted = count(plan)
    # 64x32 tied embedding + 16x32 positions + 2 blocks of (4*32*32+4*32 attention, 8*32*32+5*32 MLP, 4*32 norms)
    assert counted.num_params == 64 * 32 + 16 * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32
    assert counted.flops_per_token > 0 and counted.why_not is None
    # A machine without torch (a stand-in interpreter: this one has torch) is said, not guessed at.
    no_torch = tmp_path / "python"
    no_torch.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    no_torch.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(no_torch))
    assert count(plan).text() == "parameters not counted: torch is not installed here (the run counts them)"


def test_a_sweep_of_the_users_model_keeps_finding_its_code(tmp_path):
    """The runs are written in another folder than the template: their `model.code` still names the code."""
    import shutil

    from click.testing import CliRunner

    from megaspec.compiler.cli import cli
    from megaspec.compiler.lint.check import check_spec
    from tests.conftest import REPO_ROOT

    shutil.copytree(REPO_ROOT / "examples" / "own-model" / "src", tmp_path / "project" / "src")
    template = tmp_path / "project" / "sweep.yaml"
    template.write_text((REPO_ROOT / "examples" / "own-model" / "cpu.yaml").read_text()
                        + "sweep: {matrix: {train.lr: [1.0e-3, 3.0e-3]}}\n", encoding="utf-8")
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["sweep", str(template), "-o", str(out)])
    assert result.exit_code == 0, result.output
    runs = sorted(out.glob("*.yaml"))
    assert len(runs) == 2 and all(check_spec(run).diagnostics == [] for run in runs)


def test_a_seed_of_the_users_model_is_keyed_by_its_entry_args_and_code():
    from megaspec.compiler.commands.cache import _summary
    from megaspec.runtime.contract.seed_file import key_for
    from tests.conftest import REPO_ROOT
    from tests.runtime.conftest import make_plan

    args = {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 16}
    model = {"entry": "ownmodels.gpt:build", "code": [str(REPO_ROOT / "examples" / "own-model" / "src")],
             "args": args, "vocab_size": 64}
    plan = make_plan(preset=None, model=model, seq_len=16)
    key = key_for(plan, "cpu")
    assert key.model == {"entry": "ownmodels.gpt:build", "args": args, "code_sha256": plan.model.user.code_sha256}
    manifest = {"key": key.model_dump(), "compile_s": 1.0, "inductor_files": 3, "artifacts_bytes": 10}
    assert f"ownmodels.gpt:build (code sha256 {plan.model.user.code_sha256[:12]})" in _summary("/seed", manifest)


def test_both_example_specs_compile_to_the_same_code_here_and_in_the_image(monkeypatch):
    from megaspec.compiler.codegen.build import plan_for
    from megaspec.compiler.lint.check import check_spec
    from tests.conftest import REPO_ROOT

    monkeypatch.chdir(REPO_ROOT)
    cpu, gpu = (plan_for(check_spec(f"examples/own-model/{name}.yaml")) for name in ("cpu", "h100"))
    src = str(REPO_ROOT / "examples" / "own-model" / "src")
    assert cpu.model.user.code == [src] and gpu.model.user.code == ["/opt/megaspec/code/0-src"]
    assert cpu.model.user.code_sha256 == gpu.model.user.code_sha256
    assert [(d.local, d.remote) for d in gpu.modal.code_dirs] == [(src, "/opt/megaspec/code/0-src")]


def test_model_code_written_in_a_base_is_relative_to_the_base(tmp_path, monkeypatch):
    import shutil

    from megaspec.compiler.codegen.build import plan_for
    from megaspec.compiler.lint.check import check_spec
    from tests.conftest import REPO_ROOT

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    shutil.copytree(REPO_ROOT / "examples" / "own-model" / "src", tmp_path / "models" / "src")
    (tmp_path / "models" / "_own.yaml").write_text(
        "megaspec: 1\nmodel:\n  entry: ownmodels.gpt:build\n  code: [src]\n  vocab_size: 256\n", encoding="utf-8")
    (tmp_path / "run.yaml").write_text(
        "megaspec: 1\nname: run\ntarget: local\nextends: [models/_own.yaml]\nresources: {ranks: 1}\n"
        "train: {steps: 4, warmup_steps: 1, global_batch: 2, seq_len: 32, precision: fp32}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    checked = check_spec("run.yaml")
    assert checked.diagnostics == []
    assert plan_for(checked).model.user.code == [str(tmp_path / "models" / "src")]


def test_the_plan_hash_is_the_same_whichever_copy_of_the_code_compiled_it(tmp_path, monkeypatch):
    """A local plan names the code by where it lies here (`model.user.code`); the hash is of the content, so
    a second checkout, or a run folder's copy (`megaspec rerun`), gives the same experiment's hash."""
    import shutil

    from megaspec.compiler.codegen.build import plan_for
    from megaspec.compiler.lint.check import check_spec
    from tests.conftest import REPO_ROOT

    for checkout in ("a", "b"):
        shutil.copytree(REPO_ROOT / "examples" / "own-model", tmp_path / checkout, ignore=shutil.ignore_patterns("corpus"))
    monkeypatch.chdir(tmp_path)
    a, b = (plan_for(check_spec(f"{c}/cpu.yaml")) for c in ("a", "b"))
    assert a.model.user.code != b.model.user.code and a.sha256() == b.sha256()
    assert a.code_here() == [tmp_path / "a" / "src"]
    edited = tmp_path / "b" / "src" / "ownmodels" / "gpt.py"
    edited.write_text(edited.read_text() + "\n")
    assert plan_for(check_spec("b/cpu.yaml")).sha256() != a.sha256()
