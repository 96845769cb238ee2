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
    "pgp-key": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBGPl4ntedKeyBody0123456789abcdef\n"
               "-----END PGP PRIVATE KEY BLOCK-----",
    "gitlab": "glpat-Pl4ntedT0kenValue01234",
    "slack-app": "xapp-1-A0PL4NTED-1234567890123-Pl4ntedT0kenValue0123",
    "digitalocean": "dop_v1_" + "0123456789abcdef" * 4,
    "twilio": "SK0123456789abcdef0123456789abcdef",
    "url-password": "https://planted:Pl4ntedPassw0rd@host.example.com",
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


AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example: no prefix, a `/`
PLACEMENTS = {  # YAML that holds the token where the first round did not look (RAW: as it is)
    "escaped": "image: {env: {TOKEN_VALUE: ESCAPED}}\n",
    "folded": "image:\n  env:\n    TOKEN_VALUE: \"FIRST\n      REST\"\n",
    "comment": "# RAW\nimage: {env: {A: b}}\n",
    "truncated": "cache: {policy: QUOTED}\n",
    "key": "image: {env: {A: b}}\nbuckets: {QUOTED: {bucket: b, mount: /mnt/b}}\n",
    "sweep-name": "image: {base: QUOTED}\nsweep:\n  matrix: {image.base: [QUOTED]}\n"
                  "  name: \"{{ matrix['image.base'][4:] | lower | replace('a', 'b') }}x\"\n",
    "yaml-error": "image: {env: {A: b}}\n# RAW\nbroken: [RAW\n",
}


def placed(template: str, token: str) -> str:
    i = next(i for i in range(4, len(token)) if token[i].isalpha())  # `\x4e` for an `N`: the value is the same
    escaped = q(token[:i])[:-1] + f"\\x{ord(token[i]):02x}" + q(token[i + 1:])[1:]
    first, rest = (token[:len(token) // 2], token[len(token) // 2:]) if "\n" not in token else (token, "")
    return (template.replace("ESCAPED", escaped).replace("FIRST", first).replace("REST", rest)
            .replace("QUOTED", q(token)).replace("RAW", token.splitlines()[0] if "\n" in token else token))


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("shape", ["anthropic", "entropy", "gitlab", "url-password", "aws-secret"])
def test_a_token_in_an_escape_a_fold_a_comment_a_cut_message_or_a_derived_name_is_never_printed(
        shape: str, placement: str, tmp_path: Path, monkeypatch) -> None:
    """The small form of benchmarks/leak_matrix.py (every shape, placement and command)."""
    token = AWS_SECRET if shape == "aws-secret" else TOKENS[shape]
    template = PLACEMENTS[placement].replace("TOKEN_VALUE", "AWS_SECRET_ACCESS_KEY" if shape == "aws-secret"
                                             else "TOKEN_VALUE")
    if shape == "aws-secret" and "TOKEN_VALUE" not in PLACEMENTS[placement]:
        pytest.skip("an AWS secret access key is known by the name it is set under")
    head = "megaspec: 1\nname: leak\ntarget: local\npreset: tiny\nresources: {ranks: 1}\n"
    (tmp_path / "leak.yaml").write_text(head + placed(template, token), encoding="utf-8")
    if shape != "aws-secret":  # known by its name only: a bare value in a pyproject list is not one
        (tmp_path / "pyproject.toml").write_text(f"[tool.megaspec]\nignore = [{q(token)}]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs = {fmt: runner.invoke(cli, ["lint", "--format", fmt, "leak.yaml"]) for fmt in ("human", "json", "github")}
    for command in (["plan", "leak.yaml"], ["sweep", "--dry-run", "leak.yaml"]):
        outputs[command[0]] = runner.invoke(cli, command)
    for where, result in outputs.items():
        assert result.exit_code in (0, 1, 2), (where, result.output)  # 0: a token in a comment is no error
        for tail in tails(token):
            assert tail not in result.output, f"{shape} token in a {placement} leaked in {where}:\n{result.output}"
