"""The leak matrix: credential shapes x placements x commands, with the environment holding tokens too.
Goal: 0 leaks (no output and no file written holds a token past its first four characters).

    python benchmarks/leak_matrix.py [--only SUBSTRING]

Each shape is planted in one placement of an otherwise clean spec (a field, a key, a base file, an
escape, a folded scalar, a comment, a cut message, a sweep name derived from it, a YAML error, a
pyproject value), then every command that reads a spec runs on it in this process (click's runner:
a fresh process per command would take an hour), with MODAL_TOKEN_SECRET, AWS_SECRET_ACCESS_KEY and
a GitHub token in its environment. Every byte it prints and every file it writes is searched for
each token's tail. Prints the counts and each leak; exit 1 on a leak.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli

TOKENS = {
    "aws-key-id": "AKIAQ3EGXZ7PLANTED55", "github": "ghp_Pl4ntedT0kenValue0123456789abcdefAB",
    "github-pat": "github_pat_11ABCDEFG0Pl4nted_T0kenValue0123456789abcdefghijklmn",
    "hf": "hf_Pl4ntedT0kenValue0123456789abcdef", "anthropic": "sk-ant-api03-Pl4ntedT0kenValue0123456789",
    "openai": "sk-proj-Pl4ntedT0kenValue0123456789", "modal": "ak-Pl4ntedT0kenValue0123456789",
    "slack": "xoxb-1234567890-Pl4ntedT0ken", "slack-app": "xapp-1-A0PL4NTED-1234567890123-Pl4ntedT0kenValue0123",
    "google": "AIzaSyPl4ntedT0kenValue0123456789abcde", "gitlab": "glpat-Pl4ntedT0kenValue01234",
    "digitalocean": "dop_v1_" + "0123456789abcdef" * 4, "twilio": "SK0123456789abcdef0123456789abcdef",
    "wandb-local": "local-" + "9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.Pl4ntedSignatureValue0123",
    "url-password": "https://planted:Pl4ntedPassw0rd@host.example.com",
    "entropy": "Zq8Lm2Xy7Kp4Rt9Vb6Nc1Hg5Wd3Fs",
    "private-key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAPl4ntedKeyBody0123456789\n-----END RSA PRIVATE KEY-----",
    "pgp-key": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBGPl4ntedKeyBody0123456789abcdef\n-----END PGP PRIVATE KEY BLOCK-----",
    "aws-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
# A shape without a prefix is a credential only by the name it is set under (AWS_SECRET_ACCESS_KEY):
# planted only where it has that name.
NAMED_ONLY = {"aws-secret"}
NAMED_PLACEMENTS = {"env value", "escaped", "folded", "base file"}
ENV_TOKENS = {"MODAL_TOKEN_SECRET": "as-EnvPl4ntedSecretValue01234567", "GITHUB_TOKEN": "ghp_EnvPl4nted0123456789abcdefABCDEFGH",
              "AWS_SECRET_ACCESS_KEY": "EnvPl4nted/K7MDENG/bPxRfiCYEXAMPLEKEY0"}
HEAD = "megaspec: 1\nname: leak\ntarget: local\npreset: tiny\nresources: {ranks: 1}\n"
# {Q}: the token as a double-quoted scalar; {R}: as it is (first line); {E}: quoted with a `\x..` escape;
# {F}/{L}: its halves for a folded scalar. The env key is AWS_SECRET_ACCESS_KEY, which names the one
# shape without a prefix.
PLACEMENTS = {
    "env value": "image: {env: {AWS_SECRET_ACCESS_KEY: {Q}}}\n",
    "apt package": "image: {apt: [{Q}]}\n",
    "base image": "image: {base: {Q}}\n",
    "bucket": "buckets: {b: {bucket: {Q}, mount: /mnt/b}}\n",
    "endpoint": "buckets: {b: {bucket: b, mount: /mnt/b, endpoint_url: {Q}}}\n",
    "key": "buckets: {{Q}: {bucket: b, mount: /mnt/b}}\n",
    "escaped": "image: {env: {AWS_SECRET_ACCESS_KEY: {E}}}\n",
    "folded": "image:\n  env:\n    AWS_SECRET_ACCESS_KEY: \"{F}\n      {L}\"\n",
    "comment": "# {R}\n",
    "cut message": "cache: {policy: {Q}}\n",
    "sweep name": "image: {base: {Q}}\nsweep:\n  matrix: {image.base: [{Q}]}\n"
                  "  name: \"{{ matrix['image.base'][4:] | lower | replace('a', 'b') }}x\"\n",
    "yaml error": "# {R}\nbroken: [{R}\n",
    "base file": "extends: _base.yaml\n",
    "pyproject": "",
}
COMMANDS = [["lint", "--format", f] for f in ("human", "concise", "json", "github", "sarif")] + [
    ["lint", "--format", "sarif", "-o", "out.sarif"], ["plan"], ["plan", "--json"], ["compile", "-o", "build"],
    ["sweep", "--dry-run"], ["sweep"], ["apply", "--target", "local", "--steps", "1"], ["explain", "MS405"],
]


def placed(template: str, token: str) -> str:
    i = next(i for i in range(4, len(token)) if token[i].isalpha())
    half = len(token) // 2
    return (template.replace("{Q}", json.dumps(token)).replace("{R}", token.splitlines()[0])
            .replace("{E}", json.dumps(token[:i])[:-1] + f"\\x{ord(token[i]):02x}" + json.dumps(token[i + 1:])[1:])
            .replace("{F}", token[:half].replace("\n", "\\n")).replace("{L}", token[half:].replace("\n", "\\n")))


def tails(token: str) -> list[str]:
    return [line[4:] if i == 0 else line for i, line in enumerate(token.splitlines()) if len(line) > 8]


def one_case(root: Path, shape: str, placement: str) -> list[str]:
    token = TOKENS[shape]
    root.mkdir()
    (root / "leak.yaml").write_text(HEAD + placed(PLACEMENTS[placement], token), encoding="utf-8")
    if placement == "base file":
        (root / "_base.yaml").write_text("megaspec: 1\n" + placed(PLACEMENTS["env value"], token), encoding="utf-8")
    if placement == "pyproject":
        (root / "pyproject.toml").write_text(f"[tool.megaspec]\nignore = [{json.dumps(token)}]\n", encoding="utf-8")
    written_before = {p for p in root.rglob("*")}
    leaks, runner, cwd = [], CliRunner(), os.getcwd()
    os.chdir(root)
    try:
        for command in COMMANDS:
            args = [*command, "leak.yaml"] if command[0] != "explain" else command
            result = runner.invoke(cli, args, env=ENV_TOKENS)
            leaks += [f"{shape} | {placement} | {' '.join(command)}" for t in _all_tails(token)
                      if t in result.output]
    finally:
        os.chdir(cwd)
    for path in sorted({p for p in root.rglob("*") if p.is_file()} - written_before):
        text = path.read_text(encoding="utf-8", errors="replace")
        leaks += [f"{shape} | {placement} | file {path.relative_to(root)}" for t in _all_tails(token) if t in text]
    return leaks


def _all_tails(token: str) -> list[str]:
    return tails(token) + [t for env in ENV_TOKENS.values() for t in tails(env)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose shape or placement holds this")
    only = parser.parse_args().only
    leaks, cases = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for shape in TOKENS:
            for placement in PLACEMENTS:
                if only not in f"{shape} {placement}" or (shape in NAMED_ONLY and placement not in NAMED_PLACEMENTS):
                    continue
                cases += 1
                found = one_case(Path(tmp) / f"case{cases}", shape, placement)
                leaks += found
                for leak in found:
                    print("LEAK", leak, flush=True)
    print(f"{len(TOKENS)} shapes x {len(PLACEMENTS)} placements (the unprefixed shape in its named ones) x "
          f"{len(COMMANDS)} commands "
          f"(+ {len(ENV_TOKENS)} tokens in the environment): {cases} cases, {cases * len(COMMANDS)} command runs, "
          f"{len(leaks)} leaks")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
