"""Credential detection: each known token shape by name, the entropy check only where it applies,
and the ordinary values of a spec (images, digests, paths, versions) never flagged."""

from __future__ import annotations

import pytest

from megaspec.compiler.lint.credentials import credential_kind, find_credentials, mask, token_matches

BODY = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY0z2A4c6E8g"  # mixed case and digits, long enough for every shape


@pytest.mark.parametrize(("value", "kind"), [
    ("AKIA" + "ABCDEFGHIJKLMNOP", "AWS access key id"),
    ("ghp_" + BODY[:36], "GitHub token"),
    ("github_pat_" + BODY + "_x", "GitHub fine-grained token"),
    ("hf_" + BODY[:34], "Hugging Face token"),
    ("sk-proj-" + BODY, "OpenAI key"),
    ("sk-" + BODY, "OpenAI key"),
    ("sk-ant-api03-" + BODY, "Anthropic key"),
    ("ak-" + BODY[:24], "Modal token"),
    ("xoxb-1234567890-" + BODY[:12], "Slack token"),
    ("AIza" + BODY[:35], "Google API key"),
    ("local-" + "9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b", "W&B on-premises API key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
    (f"https://user:x@host/{'hf_' + BODY[:34]}", "Hugging Face token"),  # inside a longer value
])
def test_known_shapes_are_named(value, kind):
    assert credential_kind(value) == kind
    [(start, end, token, found)] = list(token_matches(f"key: {value}\n"))
    assert found == kind and f"key: {value}\n"[start:end] == token


@pytest.mark.parametrize("value", [
    "nvidia/cuda:12.8.1-devel-ubuntu22.04",
    "nvidia/cuda@sha256:" + "0123456789abcdef" * 4,
    "/vol/data/tokens/shard-000123.bin",
    "torch==2.8.0+cu128",
    "dense-1b-h200x8-lr3e-4-gb64",
    "risk-assessment-of-the-pipeline",  # `sk-` inside a word is not a key
])
def test_ordinary_values_are_not_credentials(value):
    assert credential_kind(value) is None
    assert credential_kind(value, key="env:SOME_SETTING") is None


@pytest.mark.parametrize("digest", ["9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b", "0123456789abcdef" * 4])
def test_a_commit_or_digest_pins_a_revision_unless_the_key_names_a_secret(digest):
    assert credential_kind(digest, key="env:MODEL_REVISION") is None
    assert credential_kind(digest, key="env:WANDB_API_KEY") == "high-entropy string"
    assert credential_kind(digest.upper(), key="env:MODEL_REVISION") == "high-entropy string"


def test_entropy_check_only_under_secret_keys_and_image_env():
    value = "8f3a9c2b7d1e4f6a0b5c8d2e9f1a3b7c"
    assert credential_kind(value) is None
    assert credential_kind(value, key="api_key") == "high-entropy string"
    found = find_credentials({"image": {"env": {"RUN_SALT": value}}, "name": value})
    assert found == [(("image", "env", "RUN_SALT"), value, "high-entropy string")]


def test_mask_keeps_length_and_only_a_prefix():
    token = "hf_" + BODY[:34]
    assert mask(token) == "hf_a" + "*" * (len(token) - 4) and len(mask(token)) == len(token)
    assert mask("short-secret") == "*" * 12
