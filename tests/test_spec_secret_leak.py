"""Tokens of every shape planted in every string field, in mapping keys and in a base file: each is
reported (MS405), and no byte of it reaches any output format, `plan`, `compile` or `sweep` output,
or any file (issue 11). PR logs are public.

One spec per token shape holds the token in every place at once; each output is searched for the
token's tail (the mask keeps at most its first four characters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli

TOKENS = {
    "aws": "AKIAQ3EGXZ7PLANTED55",
    "github": "ghp_Pl4ntedT0kenValue0123456789abcdefAB",
    "github-pat": "github_pat_11ABCDEFG0Pl4nted_T0kenValue0123456789abcdefghijklmn",
    "hf": "hf_Pl4ntedT0kenValue0123456789abcdef",
    "anthropic": "sk-ant-api03-Pl4ntedT0kenValue0123456789",
    "openai": "sk-proj-Pl4ntedT0kenValue0123456789",
    "modal": "ak-Pl4ntedT0kenValue0123456789",
    "slack": "xoxb-1234567890-Pl4ntedT0ken",
    "google": "AIzaSyPl4ntedT0kenValue0123456789abcde",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.Pl4ntedSignatureValue0123",
    "entropy": "Zq8Lm2Xy7Kp4Rt9Vb6Nc1Hg5Wd3Fs",
    "private-key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAPl4ntedKeyBody0123456789\nAbCdEfGh\n"
                   "-----END RSA PRIVATE KEY-----",
}
NAME_LIKE = {"aws", "entropy"}  # shapes that are also valid `image.env` names, so they can be keys there


def q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar: `\n` escapes on one line


def spec_text(token: str, as_env_key: bool) -> str:
    env_key = f"{q(token)}: x, " if as_env_key else ""
    return f"""megaspec: 1
name: leak
extends: _base.yaml
target: local
preset: tiny
resources: {{ranks: 1}}
image:
  base: {q("registry.example.com/" + token + ":1")}
  packages: [{q("pkg==" + token)}]
  apt: [{q(token)}]
  env: {{{env_key}TOKEN_VALUE: {q(token)}}}
volumes:
  data: {{name: ms-data, mount: {q("/vol/" + token.splitlines()[0].replace(" ", ""))}}}
buckets:
  {q(token)}: {{bucket: {q(token)}, mount: /mnt/b, prefix: {q(token + "/")},
    endpoint_url: {q("https://" + token + ".example.com")}}}
sweep:
  matrix: {{train.lr: [1.0e-4, 2.0e-4]}}
  name: {q(token)}
"""


def tails(token: str) -> list[str]:
    """What must never be printed: the token past its first four characters, line by line."""
    return [line[4:] if i == 0 else line for i, line in enumerate(token.splitlines()) if len(line) > 8]


@pytest.mark.parametrize("shape", sorted(TOKENS))
def test_a_planted_token_is_reported_and_never_printed_or_written(shape: str, tmp_path: Path, monkeypatch) -> None:
    token = TOKENS[shape]
    (tmp_path / "_base.yaml").write_text(f"megaspec: 1\ntrain: {{steps: 5}}\nimage: {{apt: [{q(token)}]}}\n"
                                         f"{q(token)}: 1\n", encoding="utf-8")
    (tmp_path / "leak.yaml").write_text(spec_text(token, shape in NAME_LIKE), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = {fmt: runner.invoke(cli, ["lint", "--format", fmt, "leak.yaml", "_base.yaml"])
               for fmt in ("human", "concise", "json", "github", "sarif")}
    outputs["compile"] = runner.invoke(cli, ["compile", "leak.yaml", "-o", "build"])
    outputs["plan"] = runner.invoke(cli, ["plan", "leak.yaml"])
    outputs["plan-json"] = runner.invoke(cli, ["plan", "leak.yaml", "--json"])
    outputs["sweep"] = runner.invoke(cli, ["sweep", "leak.yaml"])
    outputs["lint-o"] = runner.invoke(cli, ["lint", "--format", "sarif", "-o", "report.sarif", "leak.yaml"])
    assert all(result.exit_code == 1 for result in outputs.values()), {k: v.output for k, v in outputs.items()}
    files = {p.relative_to(tmp_path).as_posix(): p.read_text(encoding="utf-8") for p in tmp_path.rglob("*")
             if p.is_file() and p.name not in ("leak.yaml", "_base.yaml")}
    assert set(files) == {"report.sarif"}  # compile and sweep refused: nothing else written
    texts = {**{k: v.output for k, v in outputs.items()}, **files}
    for where, text in texts.items():
        for tail in tails(token):
            assert tail not in text, f"{shape} token leaked in {where}"
    found = json.loads(outputs["json"].output)["diagnostics"]
    leak_paths = {tuple(d["yaml_path"]) for d in found if d["code"] == "MS405"}
    assert ("image", "apt", 0) in leak_paths and ("image", "env", "TOKEN_VALUE") in leak_paths
    for field in ("base", "packages"):
        assert any(p[:2] == ("image", field) for p in leak_paths), (field, leak_paths)
    for field in ("bucket", "prefix", "endpoint_url"):
        assert any(p[:1] == ("buckets",) and p[-1] == field for p in leak_paths), (field, leak_paths)
    assert any(d["code"] == "MS405" and d["path"] == "_base.yaml" for d in found)


def test_the_fast_token_scan_finds_what_the_full_regex_finds() -> None:
    """token_matches tries the shapes only where a literal start is (speed); it must miss nothing."""
    from megaspec.compiler.lint.credentials import _ANY_KNOWN, token_matches

    for token in TOKENS.values():
        for text in (token, f"a: {token} b", f"x{token}", f"{token}{token}", q(token), f"--{token}--"):
            expected = [(m.start(), m.end()) for m in _ANY_KNOWN.finditer(text)]
            assert [(start, end) for start, end, _, _ in token_matches(text)] == expected, text
