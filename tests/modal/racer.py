"""Run megaspec commands in real processes started at the same instant, as often as asked.

Starting a Python with modal imported takes seconds of CPU; forking this one (modal and the CLI
imported, no Modal client made yet) makes each racer a real process in milliseconds. Each line
on stdin is a JSON list of argv lists; the commands are forked, held on one pipe, released
together; one JSON line on stdout answers with their exit codes. Their output goes to
`OUT_DIR/<try>-<i>.log`. Usage: `python tests/modal/racer.py OUT_DIR`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def race(commands: list[list[str]], log_stem: Path) -> list[int]:
    from megaspec.compiler.cli import main

    gate_read, gate_write = os.pipe()
    pids = []
    for i, argv in enumerate(commands):
        pid = os.fork()
        if pid == 0:
            os.close(gate_write)
            log = os.open(f"{log_stem}-{i}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.read(gate_read, 1)  # every racer waits here until the parent lets them all go
            try:
                main(argv)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        pids.append(pid)
    os.close(gate_read)
    os.write(gate_write, b"x" * len(commands))
    os.close(gate_write)
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]


def main() -> None:
    import modal  # noqa: F401 - imported once, before the forks

    from megaspec.compiler.commands import runs  # noqa: F401
    from megaspec.compiler.runs import refresh, sweep_launch  # noqa: F401
    from megaspec.compiler.runs.backends import modal_collect  # noqa: F401

    out_dir = Path(sys.argv[1])
    for n, line in enumerate(sys.stdin):
        codes = race(json.loads(line), out_dir / f"try{n}")
        print(json.dumps(codes), flush=True)


if __name__ == "__main__":
    main()
