"""Fuzzing the spec front end: real specs mutated at the text level, through lint and (when clean) compile.

    python benchmarks/spec_fuzz.py [--num-specs 100000] [--compile-every 50] [--seed 0] [--max-seconds 1800]

A mutation inserts a hostile fragment (bombs, odd numbers, line breaks ruamel and editors disagree
on, NUL escapes, tags, Jinja in a sweep name, bad `extends:` paths, tokens), deletes or duplicates
text, or swaps lines. Each mutant is linted in-process; a problem is an MS902, an exception, a
check over 5 s, or a diagnostic without a location or a hint. Every `--compile-every`th mutant that
lints clean is also lowered, rendered and written. Prints the counts, the time and the first problems.
tests/test_fuzz_front_end.py runs the same mutations under hypothesis, bounded, in the suite.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASES = sorted(p for p in (ROOT / "specs").glob("*.yaml") if not p.name.startswith("_"))
FRAGMENTS = (
    "0x_", "0o_", "0b_", "9" * 5000, "2" * 400, ".inf", "-.nan", "1e400", "-1", "0", "null", "~", "true",
    '"a\\0b"', '""', '"A=B"', "\u2028", "\u2029", "\r", "\x85", "\t", "\x0c", "\ufeff", "\\", "'it''s'",
    "&a [1, 2]", "*a", "&b {x: 1}", "<<: *b", "!!python/object:os.system", "!!binary aGk=", "!custom x",
    "[" * 70, "{a: ", "- ", ": ", "? ", "|\n  x\n", ">-\n  y\n", "---\n", "...\n", "%YAML 1.1\n", "# megaspec: ignore[MS2]\n",
    "extends: /proc/self/environ\n", "extends: ../../etc/passwd\n", 'extends: "a\\0b.yaml"\n',
    "extends: " + "a" * 300 + ".yaml\n", "extends: [x.yaml, x.yaml]\n", "preset: dense-8b\n",
    'sweep: {matrix: {train.lr: [1.0e-4, 2.0e-4]}, name: "{{ name | nofilter }}"}\n',
    'sweep: {matrix: {train.lr: [1.0e-4]}, name: "{% for i in range(100000000) %}{% endfor %}"}\n',
    "sweep: {matrix: {train.lr: [1.0e-4]}, name: \"{{ 'x' * 400000000 }}\"}\n",
    "sweep: {matrix: {train.seed: [" + ", ".join(map(str, range(200))) + "], train.steps: ["
    + ", ".join(map(str, range(1, 201))) + "]}}\n",
    "image: {env: {'': x, 'A=B': y}}\n", "AKIAQ3EGXZ7PLANTED55", "ghp_Pl4ntedT0kenValue0123456789abcdefAB",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.Pl4ntedSignatureValue0123", "H100:8", "H100!:99", "\"\\t\"",
    "cpu", "2024-01-01", "0.0.0", "x" * 200, "é✓😀", "megaspec: 2\n", "name: Bad Name\n", "resources:\n  gpu:\n",
)
CHARS = ("\r", "\n", "\t", " ", ":", "-", "#", "'", '"', "[", "]", "{", "}", "&", "*", "!", "|", ">", "%", "@",
         "`", "\x00", "\x85", "\u2028", "\ufeff", "0", "9", ".")
OPS = ("insert", "delete", "value", "dup", "swap", "char")


def mutate(text: str, ops: list[tuple[str, float, float, int]]) -> str:
    """Apply each op (kind, where in [0, 1), a second position in [0, 1), a choice) to the text."""
    for kind, where, other, choice in ops:
        lines = text.split("\n")
        at, line = int(where * len(text)), int(where * len(lines))
        if kind == "insert":
            text = text[:at] + FRAGMENTS[choice % len(FRAGMENTS)] + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1 + int(other * 40):]
        elif kind == "value" and ": " in lines[line]:
            key = lines[line].split(": ", 1)[0]
            lines[line] = f"{key}: {FRAGMENTS[choice % len(FRAGMENTS)]}"
            text = "\n".join(lines)
        elif kind == "dup":
            text = "\n".join([*lines[:line + 1], lines[line], *lines[line + 1:]])
        elif kind == "swap":
            j = int(other * len(lines))
            lines[line], lines[j] = lines[j], lines[line]
            text = "\n".join(lines)
        elif kind == "char":
            text = text[:at] + CHARS[choice % len(CHARS)] + text[at:]
    return text


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def check(text: str, folder: Path, *, build: bool, limit_s: int = 5) -> list[str]:
    """Problems found linting `text` (and building it, when clean and `build`); [] when none."""
    from megaspec.compiler.codegen.build import plan_for
    from megaspec.compiler.codegen.render import render, write_build
    from megaspec.compiler.diagnostics import has_errors
    from megaspec.compiler.lint.check import check_spec
    from megaspec.compiler.lint.report import render_report

    path = folder / "spec.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    try:
        checked = check_spec(path)
        problems = [f"{d.code} {d.message[:120]}" for d in checked.diagnostics if d.code.startswith("MS9")]
        problems += [f"no location or no hint: {d.code} {d.message[:120]}" for d in checked.diagnostics
                     if (d.span is None and d.code != "MS008") or not d.hint]
        for fmt in ("human", "sarif"):
            render_report(fmt, checked.diagnostics, texts=checked.smap.texts, num_files=1)
        if build and checked.spec is not None and not has_errors(checked.diagnostics):
            plan = plan_for(checked, target=None)
            write_build(render(plan), folder / "build", plan.name)
        return problems
    except Hang:
        return [f"took over {limit_s} s"]
    except Exception as e:  # noqa: BLE001 - what the fuzzer looks for
        return [f"raised {type(e).__name__}: {str(e)[:200]}"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def random_ops(rng: random.Random) -> list[tuple[str, float, float, int]]:
    return [(rng.choice(OPS), rng.random(), rng.random(), rng.randrange(1 << 16)) for _ in range(rng.randint(1, 4))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-specs", type=int, default=100_000)
    parser.add_argument("--compile-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    texts = [p.read_text(encoding="utf-8") for p in BASES]
    folder = Path(tempfile.mkdtemp(prefix="megaspec-fuzz-"))
    start, found = time.perf_counter(), []
    num = 0
    for num in range(1, args.num_specs + 1):
        text = mutate(rng.choice(texts), random_ops(rng))
        build = num % args.compile_every == 0
        problems = check(text, folder, build=build)
        found += [(num, p, text) for p in problems]
        if time.perf_counter() - start > args.max_seconds:
            break
    elapsed = time.perf_counter() - start
    print(f"{num:,} mutated specs linted in {elapsed:.1f} s ({num / elapsed:,.0f}/s), "
          f"every {args.compile_every}th also compiled when clean; {len(found)} problem(s)")
    for num, problem, text in found[:10]:
        print(f"  #{num}: {problem}\n    {text[:300]!r}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
