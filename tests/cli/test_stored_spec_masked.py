"""A run folder keeps the spec as applied (`spec.yaml`, what `megaspec rerun` runs): a token in one of
its comments is masked there, as in every report (lint refuses one in a value, MS405)."""

from __future__ import annotations

from tests.conftest import REPO_ROOT, run_megaspec

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GENERATED = "Zx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0Lz"  # no known shape: the entropy test finds it


def test_apply_keeps_no_token_from_a_comment_in_the_run_folder(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text() + f"# pushed by {TOKEN}\n# note {GENERATED}\n")
    result = run_megaspec("apply", str(spec), "--steps", "2", "--runs-dir", str(tmp_path / "runs"),
                          "--out", str(tmp_path / "build"), "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    (stored,) = (tmp_path / "runs").glob("*/spec.yaml")
    written = [p for p in tmp_path.rglob("*") if p.is_file()
               and (TOKEN.encode() in p.read_bytes() or GENERATED.encode() in p.read_bytes())]
    assert written == [spec], written  # only the user's own file holds it
    assert "# pushed by ghp_" in stored.read_text()
