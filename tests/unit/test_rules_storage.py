"""Unit tests for the MS4xx rules (storage, image, secrets) and the mount helpers they share."""

from __future__ import annotations

import pytest

from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.rules.image import _pinned
from megaspec.compiler.spec.mounts import is_under
from tests.unit.test_rules_training import codes, lint

DATA_VOL = {"cache": {"name": "ms-compile-cache", "mount": "/vol/cache"},
            "data": {"name": "ms-shards", "mount": "/vol/data"}}
BUCKET = {"corpus": {"bucket": "my-corpus", "mount": "/mnt/corpus", "prefix": "tokens/"}}


@pytest.mark.parametrize(("path", "root", "expected"), [
    ("/vol/data/x", "/vol/data", True), ("/vol/data", "/vol/data/", True),
    ("/vol/data2", "/vol/data", False), ("/vol/data/../cache", "/vol/data", False), ("/anything", "/", True),
])
def test_is_under(path, root, expected):
    assert is_under(path, root) is expected


@pytest.mark.parametrize(("data", "expected"), [
    ({"source": "shards", "path": "/vol/data/tokens", "stage_from": "/mnt/corpus/tokens"}, []),
    ({"source": "shards", "path": "/mnt/corpus/tokens"}, ["MS401"]),
    ({"source": "shards", "path": "/srv/tokens"}, ["MS408"]),
    ({"source": "shards"}, ["MS411"]),
    ({"source": "shards", "path": "/vol/data/tokens", "stage_from": "/srv/tokens"}, ["MS410"]),
])
def test_data_paths(tmp_path, data, expected):
    assert codes(tmp_path, volumes=DATA_VOL, buckets=BUCKET, data=data) == expected


def test_local_target_may_read_local_disk(tmp_path):
    assert codes(tmp_path, target="local", data={"source": "shards", "path": "/srv/tokens",
                                                 "stage_from": "/srv/raw"}) == []


@pytest.mark.parametrize(("mount", "expected"), [
    ("/root", ["MS404"]), ("/root/megaspec/cache", ["MS404"]), ("/root/cache", []),
    ("/dev/shm/cache", ["MS404"]), ("/", ["MS404", "MS403"]),
])
def test_reserved_mounts(tmp_path, mount, expected):
    found = codes(tmp_path, volumes={"home": {"name": "ms-home", "mount": mount}})
    assert sorted(found) == sorted(expected)


def test_same_volume_twice_and_same_mount_twice(tmp_path):
    shared = {"checkpoints": {"name": "ms-compile-cache", "mount": "/vol/ckpt"}}
    assert codes(tmp_path, volumes=shared) == ["MS402"]
    clash = {"home": {"name": "ms-home", "mount": "/vol/cache/"}}
    [d] = lint(tmp_path, volumes=clash)
    assert d.code == "MS403" and "is the same path as" in d.message


@pytest.mark.parametrize(("requirement", "pinned"), [
    ("torch==2.8.0", True), ("numpy[extra]==2.2.6", True), ("pkg===1.0", True),
    ("pkg==1.0; python_version>'3.9'", True), ("torch>=2.6", False), ("torch~=2.8", False),
    ("torch==2.*", False), ("torch", False), ("pkg>=1,<2", False),
    ("https://example.com/pkg-1.0-py3-none-any.whl", False),
    ("https://example.com/pkg-1.0-py3-none-any.whl#sha256=" + "a" * 64, True),
    ("git+https://github.com/org/pkg@" + "0" * 40, True),
])
def test_pinned(requirement, pinned):
    assert _pinned(requirement) is pinned


def test_unpinned_package_is_a_warning_on_validate(tmp_path):
    [d] = lint(tmp_path, lane="validate", validate={"max_final_loss": 4.0}, image={"packages": ["numpy"]})
    assert (d.code, str(d.severity), d.hint) == ("MS406", "warning", "Pin the version you tested: `numpy==X.Y.Z`")


@pytest.mark.parametrize(("base", "expected"), [
    ("nvidia/cuda:12.8.1-devel-ubuntu22.04", []), ("nvidia/cuda", ["MS407"]), ("nvidia/cuda:latest", ["MS407"]),
    ("localhost:5000/cuda", ["MS407"]), ("nvidia/cuda@sha256:" + "f" * 64, []),
])
def test_base_tags(tmp_path, base, expected):
    assert codes(tmp_path, image={"base": base}) == expected


def test_credentials_are_reported_masked_once(tmp_path):
    token = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"
    found = lint(tmp_path, image={"env": {"HF_TOKEN": token}},
                 buckets={"corpus": {**BUCKET["corpus"], "endpoint_url": f"https://x/{token}"}})
    assert [d.code for d in found] == ["MS405", "MS405"]
    assert all(token not in d.message and "****" in d.message for d in found)


def test_credential_named_env_without_a_detectable_value(tmp_path):
    [d] = lint(tmp_path, image={"env": {"WANDB_API_KEY": "changeme", "NCCL_DEBUG": "WARN"}})
    assert (d.code, d.yaml_path) == ("MS412", ("image", "env", "WANDB_API_KEY"))


TOKEN = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"


def test_credentials_are_reported_when_schema_errors_stop_the_rules(tmp_path):
    found = lint(tmp_path, lane="trian", image={"env": {"GH": TOKEN, "WANDB_API_KEY": "8f3a9c2b7d1e4f6a0b5c8d2e9f1a"}})
    assert sorted(d.code for d in found) == ["MS105", "MS405", "MS405"]
    paths = {d.yaml_path for d in found if d.code == "MS405"}
    assert paths == {("image", "env", "GH"), ("image", "env", "WANDB_API_KEY")}
    assert all(TOKEN not in d.message for d in found)


@pytest.mark.parametrize("text", [
    f"megaspec: 1\nname: x\nimage: {{env: {{GH: {TOKEN}}}}}\ntrain: [\n",  # YAML error
    f"megaspec: 1\nname: x\nextends: [missing.yaml]\nimage:\n  env:\n    GH: {TOKEN}\n",  # extends error
])
def test_tokens_in_the_raw_text_are_reported_when_the_file_does_not_load(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    found = check_spec(path).diagnostics
    [d] = [d for d in found if d.code == "MS405"]
    assert any(other.is_error for other in found if other.code != "MS405")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if TOKEN in ln)
    col = text.splitlines()[line - 1].index(TOKEN) + 1
    assert (d.span.line, d.span.col, d.span.end_col) == (line, col, col + len(TOKEN))
    assert TOKEN not in d.message and "GitHub token `ghp_****" in d.message
