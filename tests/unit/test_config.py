"""Stage 5 (config): `[tool.megaspec]` discovery, ignore lists, warnings-as-errors, bad config."""

from __future__ import annotations

from megaspec.compiler.diagnostics import Diagnostic, Severity, Span
from megaspec.compiler.lint.config import Config, find_pyproject, load_config

SPAN = Span(path="s.yaml", line=1, col=1, end_line=1, end_col=2)


def diag(code: str, severity: Severity = Severity.WARNING) -> Diagnostic:
    return Diagnostic(code=code, rule="r", severity=severity, message="m", span=SPAN)


def test_nearest_pyproject_walking_up(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.megaspec]\nignore = ['MS303']\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_pyproject(nested) == tmp_path / "pyproject.toml"
    config = load_config(nested)
    assert config.ignore == ("MS303",) and not config.diagnostics


def test_no_table_is_the_default(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert load_config(tmp_path) == Config(path=str(tmp_path / "pyproject.toml"))


def test_ignore_codes_and_prefixes():
    config = Config(ignore=("MS303", "MS4"))
    kept = config.apply([diag("MS303"), diag("MS304"), diag("MS401"), diag("MS410")])
    assert [d.code for d in kept] == ["MS304"]


def test_warnings_as_errors_true_and_prefixes():
    assert [str(d.severity) for d in Config(warnings_as_errors=True).apply([diag("MS301")])] == ["error"]
    promoted = Config(warnings_as_errors=("MS2",)).apply([diag("MS201"), diag("MS301")])
    assert [(d.code, str(d.severity)) for d in promoted] == [("MS201", "error"), ("MS301", "warning")]


def test_flags_add_to_the_file():
    config = Config(ignore=("MS3",)).merged(ignore=("MS4",), warnings_as_errors=True)
    assert config.ignore == ("MS3", "MS4") and config.warnings_as_errors is True


def test_table_parsing(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.megaspec]\nignore = ['ms3xx']\nwarnings-as-errors = ['MS2']\n")
    config = load_config(tmp_path)
    assert config.ignore == ("MS3",) and config.warnings_as_errors == ("MS2",)


def test_bad_config_is_a_located_diagnostic(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.megaspec]\nignores = ['MS303']\nignore = 'MS303'\n")
    problems = load_config(tmp_path).diagnostics
    assert [(d.code, d.span.line) for d in problems] == [("MS012", 5), ("MS012", 6)]
    assert problems[0].message == "unknown key `ignores` in `[tool.megaspec]`"
    assert problems[0].span.path.endswith("pyproject.toml")


def test_invalid_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.megaspec\n")
    [d] = load_config(tmp_path).diagnostics
    assert d.code == "MS012" and d.span.line == 1 and "not valid TOML" in d.message


def test_bad_code_in_list(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.megaspec]\nwarnings-as-errors = ['W1']\n")
    config = load_config(tmp_path)
    assert config.warnings_as_errors == ()
    assert [d.message for d in config.diagnostics] == ["`W1` in `warnings-as-errors` is not a megaspec code"]


def test_exclude_globs_prune_directory_walks_from_the_config_folder(tmp_path, monkeypatch):
    from megaspec.compiler.lint.check import expand_paths

    (tmp_path / "pyproject.toml").write_text('[tool.megaspec]\nexclude = ["tests/fixtures", "specs/wip-*"]\n')
    for rel in ("specs/ok.yaml", "specs/wip-a.yaml", "tests/fixtures/broken.yaml", "tests/more/spec.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("megaspec: 1\nname: x\n")
    monkeypatch.chdir(tmp_path / "specs")
    config = load_config()
    assert config.exclude == ("tests/fixtures", "specs/wip-*") and not config.diagnostics
    files, problems = expand_paths([".."], config)
    assert [f.split("../", 1)[1] for f in files] == ["specs/ok.yaml", "tests/more/spec.yaml"] and problems == []
    assert expand_paths(["../tests/fixtures/broken.yaml"], config)[0] == ["../tests/fixtures/broken.yaml"]


def test_exclude_must_be_a_list_of_globs(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.megaspec]\nexclude = "tests"\n')
    [d] = load_config(tmp_path).diagnostics
    assert (d.code, d.span.line) == ("MS012", 2) and "list of path globs" in d.message
