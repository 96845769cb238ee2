"""Compile-cache seed: a 2-rank `compile: true` tiny run on CPU, cold vs seeded, through the CLI.

`megaspec cache seed` compiles the model once on one device; a `cache.policy: require-seed` run
restores the seed before its ranks compile. Printed: each run's compile time (the receipt's
`compile_s`, the slowest rank: the first step minus a steady one), the seed's own compile, and the
ratio seeded / cold. Goal: the seeded compile at most half the cold one.
Run: `python benchmarks/seed_compile.py [--repeats 1]` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _common import apply_receipt, arguments, megaspec_s

SPEC = """\
megaspec: 1
name: seed-bench
target: local
resources: {{ranks: 2, timeout: 10m}}
preset: tiny
cache: {cache}
train: {{steps: 6, warmup_steps: 2, global_batch: 8, micro_batch: 4, seq_len: 64, precision: fp32, compile: true}}
distributed: {{timeout: 10m}}
"""
def run_compile_s(tmp: Path, spec: str) -> tuple[float, str]:
    """Apply `spec` in a fresh runs dir; the slowest rank's compile time and the startup state."""
    _, receipt = apply_receipt(spec, tmp, cwd=tmp)
    return max(r["compile_s"] for r in receipt["per_rank"]), receipt["startup"]["state"]


def main() -> None:
    args = arguments(__doc__, repeats=1).parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "cold.yaml").write_text(SPEC.format(cache="{policy: cold}"))
        (tmp / "seeded.yaml").write_text(SPEC.format(cache=f"{{policy: require-seed, seed: {tmp / 'seed'}}}"))
        seed_s = megaspec_s("cache", "seed", "seeded.yaml", cwd=tmp)
        seed_compile_s = json.loads((tmp / "seed" / "seed.json").read_text())["compile_s"]
        print(f"cache seed: {seed_s:.1f} s end to end, its compile {seed_compile_s:.1f} s")
        for i in range(args.repeats):
            cold, cold_state = run_compile_s(tmp, "cold.yaml")
            seeded, seeded_state = run_compile_s(tmp, "seeded.yaml")
            assert (cold_state, seeded_state) == ("cold", "seeded"), (cold_state, seeded_state)
            verdict = "met" if seeded <= cold / 2 else "NOT met"
            print(f"run {i + 1}: compile cold {cold:.1f} s, seeded {seeded:.1f} s, "
                  f"ratio {seeded / cold:.2f} (goal <= 0.50: {verdict})")


if __name__ == "__main__":
    main()
