"""schema.json and `megaspec lint` agree on types and shape: what one rejects, the other rejects.

Every field of a spec that sets all of them is mutated (wrong types, integral floats, empty and
zero durations, deletions, unknown keys); each mutant goes through the jsonschema library (what
check-jsonschema runs) and through the linter's own stages, and a sample through both real CLIs.
"Rejects" on the linter side means a type or shape code (MS1xx); the rules' judgements are theirs.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from megaspec.compiler.spec.compose import compose
from megaspec.compiler.spec.json_schema import spec_schema
from megaspec.compiler.spec.source_map import SourceMap
from megaspec.compiler.spec.validate import build_spec

ROOT = Path(__file__).resolve().parent.parent

EVERY_FIELD = {
    "megaspec": 1, "name": "every-field", "lane": "train", "target": "modal",
    "resources": {"gpu": "H100:8", "exact": True, "nodes": 1, "timeout": "2h", "retries": 1, "cpu": 8.0,
                  "memory_gib": 64},
    "image": {"python": "3.11", "base": "nvcr.io/nvidia/pytorch:25.01-py3", "packages": ["torch==2.8.0"],
              "apt": ["git"], "env": {"NCCL_DEBUG": "WARN"}, "uv_version": "0.8.4"},
    "volumes": {"cache": {"name": "ms-cache", "mount": "/vol/cache", "version": 2},
                "checkpoints": {"name": "ms-ckpt", "mount": "/vol/ckpt"}},
    "buckets": {"corpus": {"bucket": "my-corpus", "mount": "/mnt/corpus", "secret": "aws-ro", "prefix": "t/",
                           "read_only": True, "endpoint_url": "https://r2.example.com"}},
    "secrets": ["wandb"],
    "cache": {"policy": "require-seed", "seed": "/vol/cache/seed"},
    "preset": "dense-125m",
    "model": {"n_layers": 12, "max_seq_len": 2048},
    "train": {"steps": 40, "warmup_steps": 5, "global_batch": 16, "micro_batch": 2, "seq_len": 1024, "lr": 3.0e-4,
              "min_lr_ratio": 0.1, "weight_decay": 0.1, "grad_clip": 1.0, "precision": "bf16", "compile": True,
              "activation_checkpointing": "selective", "seed": 7, "log_every": 10},
    "data": {"source": "shards", "path": "/vol/data/t", "stage_from": "/mnt/corpus/t", "dtype": "uint16"},
    "checkpoint": {"every": 10, "resume": "auto", "keep": 2},
    "distributed": {"timeout": "30m", "init_timeout": 3600, "debug": "INFO", "heartbeat": "off", "autotune": False,
                    "reshard_after_forward": "default"},
    "sweep": {"matrix": {"train.lr": [1.0e-4, 3.0e-4]}, "include": [{"train.lr": 1.0e-3}],
              "exclude": [{"train.lr": 1.0e-4}], "name": "lr{{ matrix['train.lr'] }}"},
    "bench": {"ops": ["all_reduce"], "sizes": ["1MiB", 4096], "iters": 20, "warmup_iters": 5, "gemm_dims": [4096]},
    "validate": {"finite_loss": True, "max_final_loss": 9.5, "reference_receipt": "runs/x/receipt.json",
                 "loss_rtol": 0.01},
}
VALUES = ["", 0, -5, 1, 40.0, 40.5, 1.0, True, "x", "30m", "0s", "0h0m", None, [], {}, ["a"], {"a": 1}, 2**40]


def leaf_paths(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaf_paths(value, (*path, i))
    if path:
        yield path


def mutated(path, value=None, delete=False):
    doc = copy.deepcopy(EVERY_FIELD)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def mutants():
    """(what changed, the mutated document) for every leaf: each value, deletion, an unknown sibling."""
    for path in leaf_paths(EVERY_FIELD):
        dotted = ".".join(map(str, path))
        for value in VALUES:
            yield f"{dotted}={json.dumps(value)}", mutated(path, value)
        if isinstance(path[-1], str):
            yield f"{dotted} deleted", mutated(path, delete=True)
            yield f"{dotted} + unknown_key", mutated((*path[:-1], "unknown_key"), 1)


def lint_rejects(doc: dict, tmp_path: Path, *, whole_file: bool = True) -> bool:
    """The linter's type and shape verdict: its stages up to the model (the rules judge values).

    `whole_file=False` validates the data alone (1,000x faster than a file through the loader), for
    mutants that compose (`extends:` and `preset:` resolution) leaves as they are.
    """
    if not whole_file:
        return _shape_errors(build_spec(doc, SourceMap())[1])
    composed = compose(write(tmp_path / "m.yaml", doc))
    return composed.blocked or _shape_errors(composed.diagnostics + build_spec(composed.data, composed.smap)[1])


def _shape_errors(diagnostics) -> bool:
    """MS1xx: keys, types, bounds, choices, formats. (`resources.gpu` is parsed in the model stage too,
    but an unknown GPU type is MS301, a value the rules' family judges.)"""
    return any(d.code.startswith("MS1") for d in diagnostics)


def test_every_mutant_gets_the_same_verdict_from_both(tmp_path):
    validator = jsonschema.Draft202012Validator(spec_schema())
    assert validator.is_valid(EVERY_FIELD) and not lint_rejects(EVERY_FIELD, tmp_path)
    disagree, all_mutants = [], list(mutants())
    for change, doc in all_mutants:
        schema_rejects = not validator.is_valid(doc)
        whole_file = change.startswith(("preset", "model", "extends"))
        if schema_rejects != lint_rejects(doc, tmp_path, whole_file=whole_file):
            disagree.append(f"{change}: only {'the schema' if schema_rejects else 'lint'} rejects it")
    assert len(all_mutants) > 1000 and not disagree, disagree[:10]


def test_the_issue_examples_are_rejected_by_both(tmp_path):
    validator = jsonschema.Draft202012Validator(spec_schema())
    for path, value in [(("resources", "timeout"), ""), (("resources", "timeout"), 0),
                        (("resources", "timeout"), -5), (("megaspec",), True), (("train", "steps"), 40.5)]:
        doc = mutated(path, value)
        assert not validator.is_valid(doc) and lint_rejects(doc, tmp_path), (path, value)
    for path, value in [(("train", "steps"), 40.0), (("megaspec",), 1.0)]:  # JSON Schema: 40.0 is the integer 40
        doc = mutated(path, value)
        assert validator.is_valid(doc) and not lint_rejects(doc, tmp_path), (path, value)


def test_the_real_tools_agree_on_a_sample(tmp_path):
    """check-jsonschema and `megaspec lint` as a user runs them, one call each over 24 mutants."""
    docs = [doc for i, (_, doc) in enumerate(mutants()) if i % 60 == 0][:24]
    files = [write(tmp_path / f"m{i:02d}.yaml", doc) for i, doc in enumerate(docs)]
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(spec_schema()))
    checked = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), "-o", "json",
                              *map(str, files)], capture_output=True, text=True, cwd=tmp_path)
    schema_bad = {Path(e["filename"]).name for e in json.loads(checked.stdout)["errors"]}
    megaspec = Path(sys.executable).parent / "megaspec"
    linted = subprocess.run([str(megaspec), "lint", "--no-config", "--format", "json", *map(str, files)],
                            capture_output=True, text=True, cwd=tmp_path)
    lint_bad = {Path(d["path"]).name for d in json.loads(linted.stdout)["diagnostics"]
                if d["code"].startswith("MS1") and d["severity"] == "error"}
    assert schema_bad and schema_bad != {f.name for f in files}, "the sample must hold valid and invalid mutants"
    assert schema_bad == lint_bad


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))  # JSON is YAML: the linter reads it through its own loader
    return path

