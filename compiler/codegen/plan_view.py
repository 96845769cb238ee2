"""Beside `render`: what `megaspec plan` shows before anything is launched.

The effective spec with where each value came from (file:line, a base file, a preset, a default),
what will be launched (GPU string, nodes, world size, batch geometry, volumes, secrets by name,
image), the dated cost estimate, and a unified diff of the generated files against a previous
build. Read-only and deterministic; secrets appear by name only.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from megaspec.runtime.contract import memory
from megaspec.runtime.contract.cost import Estimate
from megaspec.runtime.contract.gpus import GPUS
from megaspec.runtime.contract.plan import Plan
from megaspec.runtime.contract.rundir import PLAN_FILE

from .user_model_count import count

VIEW_SCHEMA_VERSION = "megaspec.plan-view.v1"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> {"train.steps": 300}; lists and scalars are leaves."""
    if not isinstance(data, dict) or not data:
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def effective_rows(spec_data: dict[str, Any], origins: dict[str, str]) -> list[tuple[str, Any, str]]:
    """(dotted key, effective value, origin) for every leaf of the spec, in spec order."""
    return [(key, value, origins.get(key, "default")) for key, value in flatten(spec_data).items()]


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def launch_summary(plan: Plan) -> dict[str, Any]:
    r, d, t, m = plan.resources, plan.distributed, plan.train, plan.modal
    return {
        "gpu": r.modal_gpu or None, "nodes": d.nodes, "nproc_per_node": d.nproc_per_node,
        "world_size": d.world_size, "backend": d.backend, "global_batch": t.global_batch,
        "micro_batch": t.micro_batch, "grad_accum": t.grad_accum, "seq_len": t.seq_len, "steps": t.steps,
        "warmup_steps": t.warmup_steps, "timeout_s": r.timeout_s, "retries": r.retries,
        "image": {"base": m.image.base or f"debian_slim python {m.image.python}",
                  "packages": m.image.packages, "builder_version": m.image.builder_version},
        "volumes": {v.kind: f"{v.name} -> {v.mount}" for v in m.volumes},
        "buckets": {b.key: f"{b.bucket} -> {b.mount}" for b in m.buckets},
        "secrets": list(m.secrets), "plan_hash": plan.sha256()[:12],
        "compile_cache": ({"policy": plan.cache.policy, "dir": plan.cache.dir, "seed": plan.cache.seed}
                          if t.compile else None),
    }


def _compile_line(plan: Plan) -> list[str]:
    """How the compile cache starts: a new user learns here that a `require-seed` spec needs a seed first."""
    c = plan.cache
    if not plan.train.compile:
        return []
    if c.policy == "require-seed":
        how = (f"require-seed: restores the seed at {c.seed} before compiling, or stops (MS807); make it once "
               f"with `megaspec cache seed {plan.run.spec_path}`")
    elif c.policy == "warm":
        how = f"warm: ranks share {c.dir or 'the run directory'}" + (f", started from {c.seed}" if c.seed else "")
    else:
        how = "cold: every run compiles from scratch"
    backend = "" if plan.train.compile_backend == "inductor" else f" (backend `{plan.train.compile_backend}`)"
    return [f"  compile      per-block torch.compile{backend}; cache {how}"]


def _tracking_line(plan: Plan) -> list[str]:
    """Where the trackers write: a new user learns here that W&B logs offline on this machine."""
    from megaspec.runtime.contract.plan import wandb_group

    t = plan.tracking
    if t is None:
        return []
    parts = []
    if t.tensorboard:
        parts.append(f"TensorBoard in {t.tensorboard.dir + '/<run id>' if t.tensorboard.dir else '<run dir>/tensorboard'}")
    if t.wandb:
        w = t.wandb
        how = (f"online, WANDB_API_KEY from the Secret {w.secret}" if w.mode == "online"
               else "offline in <run dir>/wandb, `wandb sync` uploads it")
        group = f", group {g}" if (g := wandb_group(plan)) else ""
        parts.append(f"W&B {w.entity + '/' if w.entity else ''}{w.project} ({how}{group})")
    return [f"  tracking     {'; '.join(parts)}"]


def _lr_line(plan: Plan) -> str:
    """The schedule `runtime/train/loop.py` `lr_at` follows, in words."""
    t = plan.train
    return (f"  lr           {t.lr:.1e}: linear warmup over {t.lr_warmup_steps} step(s), then cosine to "
            f"{t.lr * t.min_lr_ratio:.1e} at step {t.steps}")


def _eval_line(plan: Plan) -> list[str]:
    e = plan.train.eval
    if e is None:
        return []
    return [f"  eval         validation loss every {e.every} step(s) and at step {plan.train.steps}: {e.batches} "
            f"batch(es) of {plan.train.global_batch} from `val/` of {plan.data.path}"]


def _launch_lines(plan: Plan) -> list[str]:
    s, d = launch_summary(plan), plan.distributed
    where = ", ".join(s["gpu"]) if s["gpu"] else f"{d.nproc_per_node} CPU process(es)"
    listed = [f"{k} {v}" for k, v in {**s["volumes"], **s["buckets"]}.items()]
    return [
        f"  compute      {where} x {d.nodes} node(s): world size {d.world_size} ({d.backend})",
        f"  batch        global {s['global_batch']} = micro {s['micro_batch']} x {d.world_size} ranks "
        f"x grad_accum {s['grad_accum']}; seq_len {s['seq_len']}",
        f"  steps        {s['steps']} ({s['warmup_steps']} warmup, not measured)",
        _lr_line(plan),
        *_eval_line(plan),
        f"  image        {s['image']['base']}; {' '.join(s['image']['packages'])} "
        f"(builder {s['image']['builder_version']})",
        f"  storage      {'; '.join(listed) or '(none)'}",
        f"  secrets      {', '.join(s['secrets']) or '(none)'}",
        f"  timeouts     {_duration(s['timeout_s'])} per attempt x {s['retries'] + 1} attempt(s); "
        f"collectives {_duration(d.timeout_s)}, init {_duration(d.init_timeout_s)}",
        *([f"  model        {plan.model.user.entry}: {count(plan).text()}"] if plan.model.user else []),
        *_compile_line(plan),
        *_tracking_line(plan),
        *([_memory_line(plan)] if plan.lane != "bench" else []),
        f"  plan hash    {s['plan_hash']}",
    ]


NOT_ESTIMATED = ("not estimated: your model's dimensions are in its code (`model.entry`); the receipt records "
                 "the measured peak")


def _gpu_memory_gib(plan: Plan) -> float | None:
    gpu = GPUS.get(plan.resources.gpu_type or "")
    return gpu.memory_gib if gpu and plan.distributed.device == "cuda" else None


def memory_summary(plan: Plan) -> dict[str, Any]:
    """The estimated peak per rank (runtime/contract/memory.py) and, on a GPU, that GPU's memory."""
    est = memory.for_plan(plan)
    if est is None:
        return {"peak_gib": None, "allocated_gib": None, "gpu_memory_gib": _gpu_memory_gib(plan), "parts_gib": {},
                "not_estimated": NOT_ESTIMATED}
    return {"peak_gib": round(est.total / memory.GIB, 3), "allocated_gib": round(est.allocated / memory.GIB, 3),
            "gpu_memory_gib": _gpu_memory_gib(plan),
            "parts_gib": {name: round(getattr(est, name) / memory.GIB, 3)
                          for name in ("state", "gathered", "activations", "logits", "overhead")}}


def _memory_line(plan: Plan) -> str:
    est, capacity = memory.for_plan(plan), _gpu_memory_gib(plan)
    if est is None:
        return f"  memory       {NOT_ESTIMATED}"
    where = f" of the {plan.resources.gpu_type}'s {capacity} GiB" if capacity else ""
    unit = "GPU" if plan.distributed.device == "cuda" else "rank"
    return f"  memory       est. peak {memory.size_text(est.total)} per {unit}{where} ({est.breakdown()})"


def _cost_lines(est: Estimate) -> list[str]:
    from megaspec.runtime.contract.cost import STALE_AFTER_DAYS, prices_age_days

    head = f"Cost (Modal list prices as of {est.prices_as_of})"
    if prices_age_days() > STALE_AFTER_DAYS:
        head += (f"\n  warning: the price table is over {STALE_AFTER_DAYS} days old; Modal's prices may have changed "
                 "(modal.com/pricing, or `modal billing rates`)")
    if est.usd_per_hour is None:
        return [head, f"  {est.assumptions[0]}"]
    return [head, f"  {_usd(est.usd_per_hour)}/h (GPUs, CPU and memory); about {_duration(est.duration_s)} per "
                  f"attempt = {_usd(est.usd)}; worst case {_usd(est.worst_case_usd)}",
            f"  assumes {'; '.join(est.assumptions)}", "  prices: `megaspec explain MS303` says their source"]


def _value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def render_text(plan: Plan, est: Estimate, spec_data: dict[str, Any]) -> str:
    lines = [f"{plan.name} (lane {plan.lane}, target {plan.target}) from {plan.run.spec_path}", "", "Launch",
             *_launch_lines(plan)]
    if plan.run.rehearsal:
        lines += ["", "Rehearsal (a GPU spec on local CPU ranks; never a GPU result)",
                  *(f"  - {s}" for s in plan.run.substitutions)]
    lines += ["", *_cost_lines(est), "", "Effective spec"]
    rows = effective_rows(spec_data, plan.run.origins)
    width = max((len(k) for k, _, _ in rows), default=0)
    value_width = min(max((len(_value_text(v)) for _, v, _ in rows), default=0), 40)
    lines += [f"  {k:<{width}}  {_value_text(v):<{value_width}}  {o}".rstrip() for k, v, o in rows]
    return "\n".join(lines) + "\n"


def render_json(plan: Plan, est: Estimate, spec_data: dict[str, Any]) -> str:
    body = {
        "schema_version": VIEW_SCHEMA_VERSION, "name": plan.name, "lane": plan.lane, "target": plan.target,
        "launch": launch_summary(plan), "rehearsal": plan.run.rehearsal, "substitutions": plan.run.substitutions,
        "memory": memory_summary(plan) if plan.lane != "bench" else None,
        "user_model": asdict(count(plan)) if plan.model.user else None,
        "cost": {"usd_per_hour": est.usd_per_hour, "duration_s": est.duration_s, "usd": est.usd,
                 "worst_case_usd": est.worst_case_usd, "prices_as_of": est.prices_as_of,
                 "assumptions": list(est.assumptions)},
        "effective": [{"key": k, "value": v, "origin": o} for k, v, o in effective_rows(spec_data, plan.run.origins)],
    }
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def diff_build(previous: Path, files: dict[str, str]) -> str:
    """Unified diff of each generated file against `previous/<file>`, read through the bounded reader (a
    link, a special file or one over the cap is one line saying so, never read); a missing file diffs
    as empty."""
    from megaspec.runtime.contract.files import UnreadableFile, read_text_capped

    chunks = []
    for name, new in sorted(files.items()):
        old_path = previous / name
        try:
            old = read_text_capped(old_path, "plan" if name == PLAN_FILE else "app") if os.path.lexists(old_path) else ""
        except UnreadableFile as e:
            chunks.append(f"not compared: {e}\n")
            continue
        chunks += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                       fromfile=old_path.as_posix(), tofile=f"{name} (this plan)")
    return "".join(chunks) or f"no changes against {previous.as_posix()}\n"
