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
