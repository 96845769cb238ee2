"""Receipts for people: `megaspec receipts show`, the end-of-run summary, and `receipts list` lines.

The receipt JSON is for machines; this view puts what a reader checks first on top: is it a real
GPU result (requested vs observed, rehearsal), which comparison class (lane, plan hash), what
the startup paid for (cache state), and, for a failure, which rank, which stage, which error file
and where to look next, in the seeds' triage order: bootstrap, distributed compile, remote
execution, collector, record, persistence.
"""

from __future__ import annotations

from megaspec.runtime.contract.receipt import Metrics, Receipt

# Runtime stage of a failure -> what that stage does, and where to look first (one entry per
# receipt.STAGES, in order; a test keeps them equal).
RUNTIME_TRIAGE = {
    "bootstrap": "rank start-up: env, process-group rendezvous and device mesh; check that every rank started "
                 "(per-rank logs), the ports and `distributed.init_timeout`, then the image",
    "init": "model build and data: the model from its preset, the data opened (`data.path`, shard headers, "
            "lengths, token ids) and the step count agreed across ranks; read the named rank's error file",
    "compile": "FSDP2 wrapping, activation checkpointing and compile set-up; ranks that compile at different "
               "speeds diverge here: warm the compile cache (`cache.policy: require-seed`) or rehearse with `tiny`",
    "first-step": "the first optimizer step: compilation in the first forward, then the first collectives; a rank "
                  "with zero or uneven work, or compiled differently, stalls here: check the batch split and each "
                  "rank's cache state",
    "train": "remote execution: read the named rank's error file first; peers only report its absence",
    "checkpoint": "saving or loading a DCP checkpoint, where every rank writes its shard: check the checkpoint "
                  "dir (mounted, space, one kind of state per Volume), then the named rank's log",
    "receipt": "gathering every rank's status for the receipt: training finished and its numbers are kept; "
               "read the named rank's log",
    "teardown": "teardown: training finished; the fault is in process-group shutdown, not in the numbers",
}
# Codes whose fix is known whatever the stage: said instead of the stage's layer.
CODE_TRIAGE = {
    "MS807": "the compile-cache seed: make it with `megaspec cache seed SPEC`, then apply again",
    "MS812": "the compile-cache seed: it was made for another run; `megaspec cache seed SPEC` makes this one's",
    "MS813": "the data, checked before any rank started: fix the file the error names (path, header, length, "
             "`data.dtype`, token ids against the vocabulary)",
    "MS814": "your model's code (`model.entry`): fix the file and line the error names; `megaspec explain MS218` "
             "states the contract, `megaspec plan SPEC` builds it on the meta device without a run",
    "MS809": "nothing failed: a signal stopped the run (the message names it and where each rank was); apply "
             "again, or `--resume` the run directory when it has a checkpoint",
    "MS815": "the storage: free space or fix the permissions of the path the error names (or raise `ulimit -n`), "
             "then `--resume` the run directory from its last intact checkpoint",
    "MS816": "the fork server (not a rank): what killed or stopped it (`dmesg` for the OOM killer), then "
             "`--resume` the run directory",
}
# Manifest stage (who owns the fix) -> the first thing to inspect.
MANIFEST_TRIAGE = {
    "bootstrap": "launch never started the function: image build, app creation or spawn failed",
    "remote": "the function failed on Modal: read the receipt's error and the named rank's error file",
    "collector": "megaspec lost track of the run (its connection to Modal failed): the error says where it may "
                 "still run; `modal app list` and `modal app logs` show it",
    "record": "a result came back but is not a valid receipt: inspect the remote output and runtime version",
    "persistence": "the receipt could not be stored: check disk space and permissions of the run directory",
}


def _value(value, unit: str = "", fmt: str = "{:,.4g}", missing: str = "n/a") -> str:
    if value is None:
        return missing
    text = fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
    return f"{text} {unit}".rstrip()


def _peak_memory(m: Metrics) -> str:
    """Measured peak, and beside it the estimate `megaspec plan` showed before launch (CUDA runs)."""
    text = _value(m.peak_mem_gib, "GiB", "{:.2f}")
    if m.peak_mem_gib is None or m.est_peak_mem_gib is None:
        return text
    return f"{text} (estimated {m.est_peak_mem_gib:.2f} GiB before launch: {m.peak_mem_gib / m.est_peak_mem_gib:.0%})"


def _row(label: str, text: str) -> str:
    return f"  {label:<18}{text}"


def _identity(r: Receipt) -> list[str]:
    lines = [f"run {r.run_id}  [{r.lane} lane]  status: {r.status.upper()}",
             _row("spec", f"{r.spec.path}  sha256 {r.spec.sha256[:12]}"),
             _row("plan", f"sha256 {r.plan.sha256[:12]} (the experiment), plan v{r.plan.plan_version}"),
             _row("time", f"{r.started_at} -> {r.finished_at or 'unfinished'}")]
    if r.rehearsal:
        lines.append(_row("REHEARSAL", "on CPU -- not a GPU result"))
        lines += [_row("", f"- {s}") for s in r.substitutions]
    if r.model is not None:
        flops = f"{r.model.flops_per_token:,} FLOPs/token" if r.model.flops_per_token else "FLOPs not counted"
        lines += [_row("model", f"{r.model.entry}  code sha256 {r.model.code_sha256[:12]}"),
                  _row("", f"{r.model.num_params:,} parameters, {flops}")]
    return lines


def _hardware(r: Receipt) -> list[str]:
    h, d = r.hardware, r.distributed
    requested = f"{h.requested_gpu} x{h.requested_gpu_count}{' (exact)' if h.requested_exact else ''}" \
        if h.requested_gpu else "CPU"
    observed = ", ".join(sorted(set(h.observed_devices))) or "nothing"
    match = {True: "yes", False: "NO -- the receipt differs from the request", None: "n/a"}[h.matches_request]
    return ["hardware", _row("requested", requested),
            _row("observed", f"{observed} x{h.observed_gpu_count}" if h.observed_gpu_count
                 else f"{observed} ({d.world_size} process(es))"),
            _row("matches request", match),
            _row("distributed", f"{d.mode} {d.backend}/{d.device}, world {d.world_size} "
                                f"({d.nodes} node x {d.nproc_per_node}), restarts {d.max_restarts}")]


def _prepared_rows(r: Receipt) -> list[str]:
    """A folder made by `megaspec data prepare`: its tokenizer and corpus, and the splits read."""
    d = r.data
    if d.tokenizer is None:
        return []
    sha = f" sha256 {d.tokenizer_sha256[:12]}" if d.tokenizer_sha256 else ""
    rows = [_row("tokenizer", f"{d.tokenizer}{sha}; corpus sha256 {(d.corpus_sha256 or '-')[:12]}")]
    if d.num_tokens is not None:
        val = f"; val/ {d.val_num_tokens:,} tokens in {d.val_num_files} file(s)" if d.val_num_tokens is not None else ""
        rows.append(_row("splits", f"train/ {d.num_tokens:,} tokens in {d.num_files} file(s){val}"))
    return rows


def _startup_and_data(r: Receipt) -> list[str]:
    lines = ["startup and data"]
    if r.startup:
        s = r.startup
        agree = "ranks agree" if s.ranks_agree else "ranks DISAGREE"
        lines.append(_row("compile cache", f"{s.state} (policy {s.cache_policy}, {agree}"
                                           f"{', seed restored' if s.seed_restored else ''})"))
    if r.data:
        lines.append(_row("data", f"{r.data.source}, path class {r.data.path_class}"
                                  f"{f' at {r.data.path}' if r.data.path else ''}"))
        lines += _prepared_rows(r)
    if r.steps:
        st = r.steps
        lines.append(_row("steps", f"{st.completed}/{st.planned} completed, {st.warmup_excluded} excluded as "
                                   f"warmup, {st.measured} measured"))
    return lines if len(lines) > 1 else []


def mfu_text(r: Receipt) -> str:
    m = r.metrics
    if m and m.mfu_pct is not None:
        return f"{m.mfu_pct:.1f} %"
    return "n/a on CPU" if r.distributed.device == "cpu" else "n/a (unknown device peak)"


def _metrics(r: Receipt) -> list[str]:
    m = r.metrics
    if m is None:
        return []
    return ["metrics",
            _row("tokens/s", f"{_value(m.tokens_per_s, 'tok/s', '{:,.0f}')} "
                             f"({_value(m.tokens_per_s_per_device, 'per device', '{:,.0f}')})"),
            _row("step time", f"p50 {_value(m.step_time_p50_s, 's', '{:.4f}')}, "
                              f"p90 {_value(m.step_time_p90_s, 's', '{:.4f}')}"),
            _row("MFU", mfu_text(r)),
            _row("loss", f"final {_value(m.final_loss, fmt='{:.4f}')}, min {_value(m.min_loss, fmt='{:.4f}')}"),
            *([_row("val loss", ", ".join(f"{e.loss:.4f} @ {e.step}" for e in r.eval))] if r.eval else []),
            _row("peak memory", _peak_memory(m)),
            _row("wall time", _value(m.wall_time_s, "s", "{:.1f}")),
            _row("cost", cost_text(r))]


def _tracking(r: Receipt) -> list[str]:
    """Where each tracker's run is (paths relative to the run dir), and how an offline W&B run is uploaded."""
    t = r.tracking
    if t is None:
        return []
    lines = ["tracking"]
    if t.tensorboard:
        lines.append(_row("tensorboard", t.tensorboard.event_file))
    if t.wandb:
        w = t.wandb
        project = f"{w.entity}/{w.project}" if w.entity else w.project
        group = f", group {w.group}" if w.group else ""
        lines.append(_row("wandb", f"{project}/{w.run_id}{group} ({w.mode})"))
        lines.append(_row("", f"wandb sync <run dir>/{w.dir} uploads it" if w.mode == "offline" else w.dir))
    return lines if len(lines) > 1 else ["tracking", _row("", "asked for, but no tracker wrote its files")]


def cost_text(r: Receipt) -> str:
    """`$1.23 (8 x H200, 1,234 GPU-s; estimated $1.10 before launch; list prices of 2026-05-25)`."""
    c = r.cost
    if c is None:
        return "n/a"
    if c.gpu_type is None and c.usd == 0:
        return f"$0.00 (no GPU billed; list prices of {c.prices_as_of})"
    usd = "n/a (no list price)" if c.usd is None else f"${c.usd:,.2f}"
    est = "no estimate" if c.est_usd is None else f"estimated ${c.est_usd:,.2f} before launch"
    billed = f", billed as {c.billed_gpu_type}" if c.billed_gpu_type and c.billed_gpu_type != c.gpu_type else ""
    split = "" if c.gpu_usd is None else (f"; GPU ${c.gpu_usd:,.2f} + CPU ${c.cpu_usd:,.2f} + memory "
                                          f"${c.memory_usd:,.2f}, start-up " +
                                          ("not measured" if c.startup_usd is None else f"${c.startup_usd:,.2f}"))
    return (f"{usd} ({c.gpu_type or 'unknown GPU'}{billed}, {c.gpu_seconds:,.0f} GPU-s{split}; {est}; list prices "
            f"of {c.prices_as_of})")


def _per_rank(r: Receipt) -> list[str]:
    if not r.per_rank:
        return []
    head = (f"  {'rank':>4}  {'phase':<11}{'step':>5}  {'first fwd s':>11}  {'first step s':>12}  {'compile s':>9}  "
            f"{'cache':<7}  host")
    rows = [f"  {k.rank:>4}  {k.phase:<11}{k.last_step:>5}  {_value(k.first_forward_s, fmt='{:.3f}'):>11}  "
            f"{_value(k.first_step_s, fmt='{:.3f}'):>12}  {_value(k.compile_s, fmt='{:.3f}'):>9}  "
            f"{(k.cache.state if k.cache else 'n/a'):<7}  {k.host or '?'}"
            for k in sorted(r.per_rank, key=lambda k: k.rank)]
    return ["per rank", head, *rows]


def _provenance(r: Receipt) -> list[str]:
    p = r.provenance
    git = f"{p.git_sha[:12]}{' (dirty)' if p.git_dirty else ''}" if p.git_sha else "unknown"
    versions = ", ".join(f"{k} {v}" for k, v in (("megaspec", p.megaspec), ("torch", p.torch), ("modal", p.modal),
                                                 ("python", p.python), ("cuda", p.cuda), ("nccl", p.nccl)) if v)
    lines = ["provenance", _row("git", git), _row("versions", versions), _row("host", p.host)]
    modal = [f"{k} {v}" for k, v in (("task", p.modal_task_id), ("region", p.modal_region),
                                     ("cloud", p.modal_cloud_provider), ("image", p.modal_image_id)) if v]
    return lines + ([_row("modal", ", ".join(modal))] if modal else [])


def error_lines(r: Receipt) -> list[str]:
    e = r.error
    if e is None:
        return []
    rank = f"rank {e.rank}" if e.rank is not None else "no rank named"
    step = f", step {e.step}" if e.step is not None else ""
    lines = ["error", _row(e.code, f"{rank}, stage {e.stage}{step}: {e.message}")]
    if e.error_file:
        lines.append(_row("error file", e.error_file))
    look = CODE_TRIAGE.get(e.code) or RUNTIME_TRIAGE.get(e.stage, RUNTIME_TRIAGE["train"])
    lines.append(_row("look first at", look))
    return lines + [_row("also", f"{d.code} rank {d.rank}: {d.message}") for d in r.diagnostics]


def checkpoint_lines(r: Receipt) -> list[str]:
    """Where a resumed run continued from, and each newer checkpoint it passed over as damaged."""
    c = r.checkpoint
    if c is None or (c.resumed_from is None and not c.skipped):
        return []
    start = f"step-{c.resumed_from}" if c.resumed_from is not None else "no checkpoint"
    return ["checkpoint", _row("resumed from", start)] + [_row("passed over", s) for s in c.skipped]


def format_receipt(r: Receipt) -> str:
    """The whole receipt for people, section by section."""
    sections = [_identity(r), _hardware(r), _startup_and_data(r), checkpoint_lines(r), _metrics(r), _tracking(r),
                _per_rank(r), _provenance(r), error_lines(r)]
    return "\n\n".join("\n".join(s) for s in sections if s) + "\n"


def divergence_text(r: Receipt) -> str | None:
    """`diverged at step 6: loss 18.2 > 3 x the first (5.56) for 3 logged steps; stopped there`, or None."""
    d = r.divergence
    if d is None:
        return None
    then = "stopped there" if d.action == "stop" else "finished (action: flag)"
    return (f"diverged at step {d.step}: loss {d.loss:.4g} > {d.factor:g} x the first ({d.first_loss:.4g}) "
            f"for {d.patience} logged step(s); {then}")


def format_summary(r: Receipt, receipt_path: str) -> str:
    """The few lines `apply` ends with."""
    m = r.metrics
    final_loss = _value(m.final_loss if m else None, fmt="{:.4f}")
    tokens = _value(m.tokens_per_s if m else None, fmt="{:,.0f}")
    val = f"   val loss {r.eval[-1].loss:.4f}" if r.eval else ""
    lines = [f"status: {r.status}   final loss {final_loss}{val}   tokens/s {tokens}   MFU {mfu_text(r)}",
             f"receipt: {receipt_path}"]
    if r.divergence is not None:
        lines.append(divergence_text(r))
    if r.rehearsal:
        lines.append("REHEARSAL on CPU -- not a GPU result. Substitutions:")
        lines += [f"  - {s}" for s in r.substitutions]
    skipped = r.checkpoint.skipped if r.checkpoint else []
    lines += [f"checkpoint passed over: {s}" for s in skipped]
    return "\n".join(lines + error_lines(r)) + "\n"


_RUN_LINE = "{:<44} {:<11} {:<7} {:<8} {:>14} {:<10} {}"
RUN_LINE_HEADER = _RUN_LINE.format("RUN", "STATE", "BACKEND", "LANE", "TOKENS/S", "FINAL LOSS", "COMPLETED (UTC)")


def format_run_line(manifest, receipt: Receipt | None) -> str:
    """One line of `receipts list` (its columns: RUN_LINE_HEADER): run id, state, backend, lane, throughput,
    final loss, completion time."""
    m = receipt.metrics if receipt else None
    tokens = _value(m.tokens_per_s if m else None, "tok/s", "{:,.0f}", missing="-")
    loss = _value(m.final_loss if m else None, fmt="{:.4f}", missing="-")
    tag = " rehearsal" if manifest.rehearsal else ""
    completed = manifest.completed_at[:19].replace("T", " ") if manifest.completed_at else "-"  # to the second
    return _RUN_LINE.format(manifest.run_id, manifest.state, manifest.backend, manifest.lane, tokens, loss,
                            completed + tag)
