"""Property tests: random and mutated specs never raise, and every diagnostic is located."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megaspec.compiler.lint.check import check_spec

VALID: dict[str, Any] = {
    "megaspec": 1,
    "name": "prop-run",
    "lane": "train",
    "target": "local",
    "preset": "tiny",
    "resources": {"ranks": 2, "timeout": "30m", "retries": 1},
    "image": {"python": "3.11", "packages": ["torch==2.8.0", "numpy==2.2.6"], "env": {"MODE": "x"}},
    "volumes": {"checkpoints": {"name": "ms-ckpt", "mount": "/vol/ckpt"}},
    "cache": {"policy": "warm"},
    "train": {"steps": 20, "warmup_steps": 2, "global_batch": 4, "micro_batch": 2, "precision": "fp32"},
    "data": {"source": "synthetic"},
    "checkpoint": {"every": 10, "resume": "auto"},
    "distributed": {"timeout": "10m", "debug": "INFO"},
    "sweep": {"matrix": {"train.lr": [1.0e-4, 3.0e-4]}},
}

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["2h", "0s", "H100:8", "/vol/x", "bf16", "3.10"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)
WORK = Path(tempfile.mkdtemp(prefix="megaspec-prop-"))


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


def mutate(data: dict, path: tuple, action: str, value: Any, key: str) -> dict:
    import copy

    data = copy.deepcopy(data)
    *parents, last = path
    holder = data
    for p in parents:
        holder = holder[p]
    if action == "delete" and isinstance(holder, dict):
        del holder[last]
    elif action == "replace":
        holder[last] = value
    elif action == "add-key" and isinstance(holder[last], dict):
        holder[last][key] = value
    elif action == "rename" and isinstance(holder, dict):
        holder[key or "k"] = holder.pop(last)
    return data


def dump(data: Any) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def assert_located(text: str) -> None:
    path = WORK / "spec.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    checked = check_spec(path, display="spec.yaml")
    for d in checked.diagnostics:
        assert d.code != "MS902", d
        if d.code == "MS008":
            continue
        assert d.span is not None, d
        assert d.span.line >= 1 and d.span.col >= 1, d
        assert d.span.path == "spec.yaml"
        assert d.message and "Input should" not in d.message


@st.composite
def mutated_specs(draw) -> str:
    data = VALID
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(data)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["delete", "replace", "add-key", "rename"]))
        key = draw(st.sampled_from(["gpu", "nodez", "steps", "validate_", "x y", "", "1"]))
        data = mutate(data, path, action, draw(VALUES), key)
    return dump(data)


def fast(num_examples: int) -> settings:
    return settings(max_examples=num_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def test_the_unmutated_spec_is_clean():
    checked = check_spec(_write(dump(VALID)), display="spec.yaml")
    assert checked.diagnostics == [] and checked.spec is not None


def _write(text: str) -> Path:
    path = WORK / "valid.yaml"
    path.write_text(text)
    return path


@fast(130)
@given(mutated_specs())
def test_mutated_specs_give_located_diagnostics(text):
    assert_located(text)


YAMLISH = st.lists(st.sampled_from(["megaspec: 1\n", "name: x\n", "  ", "- ", "[", "]", "{", "}", ": ", "#",
                                    "\t", "&a ", "*a ", "!tag ", "resources:\n", "  gpu: H100\n", "'", '"',
                                    "\n", "preset: tiny\n", "extends: x.yaml\n", "---\n", "\ufeff"]), max_size=25)


@fast(70)
@given(st.one_of(YAMLISH.map("".join), st.text(max_size=200)))
def test_raw_text_never_raises(text):
    assert_located(text)
