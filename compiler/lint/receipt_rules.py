'''Registry entries for the codes of run receipts (MS8xx), so `megaspec explain`, `megaspec rules` and
SARIF know them. Their names come from the runtime, which owns the receipt (`runtime/contract/codes.py`);
importing this module only adds entries to the registry.
'''

from __future__ import annotations

from megaspec.runtime.contract.codes import RUNTIME_CODES  # pure data

from .rules.registry import stage_rule

_RUNTIME_DOCS: dict[str, tuple[str, str]] = {
    "MS801": ("The loss became NaN or infinite during training; the receipt names the step.",
              "Lower `train.lr`, keep `train.grad_clip` on, or use `precision: fp32` to compare."),
    "MS802": ("A rank died: it raised an error (its `error.json` is named in the receipt), or it was killed or "
              "crashed without one (an exit code such as -9, or its peers lost their connection to it).",
              "Read the named rank's error file or log first: one real traceback plus timeouts is a rank death; "
              "a rank killed without a traceback was often out of memory."),
    "MS803": ("A rank never reached a collective (still compiling, stalled, or out of work) and the others "
              "timed out waiting; the receipt names the rank that stalled, not the one that waited.",
              "Check that rank's phase and cache state; seed the compile cache (`megaspec cache seed SPEC`, "
              "then `cache.policy: require-seed`) "
              "or rerun with `preset: tiny` to separate the hang from model complexity."),
    "MS804": ("The run finished and wrote its receipt, then a process exited non-zero while tearing down.",
              "Trust the metrics in the receipt; the fault is recorded for triage only."),
    "MS805": ("The data shards hold fewer tokens than the run needs (checked before training).",
              "Add shards, or lower `train.steps` or `train.global_batch`."),
    "MS806": ("Saving or loading a checkpoint failed, or the checkpoint folder holds another experiment's "
              "checkpoints (another model, data or optimization settings under the same spec name).",
              "Check the checkpoints Volume is mounted and has space; an incomplete or damaged checkpoint is never "
              "resumed. Another experiment's: give the changed spec a new `name:` (the Volume's checkpoint folder "
              "is named after it), or move that folder away to start fresh."),
    "MS807": ("`cache.policy: require-seed` is set but no compile-cache seed was found at `cache.seed` "
              "(checked before any rank starts).",
              "Make the seed once with `megaspec cache seed SPEC`, then apply the spec again. For a Modal spec it "
              "launches a generated one-GPU app (the spec's GPU type and image) that compiles the model and writes "
              "the seed into the cache Volume at `cache.seed`, where the run looks (Modal credentials needed; "
              "`--print` shows the app); for a `target: local` spec it compiles on this machine's CPU."),
    "MS808": ("The launcher failed before workers ran (rendezvous, spawn, plan, a malformed MEGASPEC_FAULT drill).",
              "Read the launcher error in the receipt; check the plan was compiled by this megaspec version."),
    "MS809": ("The run was interrupted before it finished: the launcher received a signal (Ctrl-C, SIGTERM, "
              "preemption), or one rank was stopped by a signal sent to it alone. The receipt names the signal "
              "and where each rank was.",
              "Apply again; with `checkpoint.resume: auto` a local run continues from its latest complete "
              "checkpoint with `megaspec apply SPEC --resume RUN_DIR`, a Modal run from its checkpoints Volume."),
    "MS810": ("A `validate` lane acceptance check failed (finiteness, loss bound, or reference losses).",
              "Compare the per-step losses with the reference receipt named in `validate.reference_receipt`."),
    "MS811": ("Ranks started from different compile-cache states (some warm, some cold): the classic cause "
              "of a first-collective hang.",
              "Give every rank the same cache: one cache Volume, or a seed (`megaspec cache seed SPEC`) "
              "restored with `cache.policy: require-seed`."),
    "MS812": ("The compile-cache seed at `cache.seed` was built for another torch version, device, model "
              "shape, precision or compile setting; the run was refused before any rank started, because a "
              "seed that does not match compiles cold after all.",
              "Make a seed for this spec with `megaspec cache seed SPEC` (the message names what differs): on "
              "Modal it compiles on one GPU of the spec's type with the spec's image, so torch and the device match."),
    "MS813": ("The data cannot be trained on (checked before any rank starts): a missing path, an empty or short "
              "shard, a header claiming more tokens than the file holds, or a token id outside the vocabulary. "
              "For a folder made by `megaspec data prepare`: its manifest cannot be read, its tokenizer's "
              "vocabulary is larger than `model.vocab_size`, a shard is missing or holds other tokens than the "
              "manifest lists, or `val/` holds fewer windows than one `train.eval` evaluation reads (or the "
              "folder has no `val/` split at all).",
              "Fix the shard the message names: rewrite it, set `data.dtype`, or tokenize for this model; a "
              "prepared folder changed since: prepare it again; for `train.eval`: lower `train.eval.batches` or "
              "prepare with a larger `--val-fraction`."),
    "MS814": ("Your model (`model.entry`) failed at bootstrap, before any training step: its module is not in the "
              "`model.code` folders, it raises on import, the callable is missing or raises, it returns no "
              "`torch.nn.Module` with `layers` (a ModuleList or ModuleDict), or its forward raises or returns "
              "logits that are not `[batch, seq, model.vocab_size]`. The message names your file and line.",
              "Fix the file and line the message names; `megaspec lint` checks the module and callable without "
              "running them (MS221, MS222), `megaspec explain MS218` states the whole contract."),
    "MS815": ("A file the run needed could not be written or opened: the disk or quota is full (ENOSPC, EDQUOT), "
              "the folder is read-only or forbidden (EROFS, EACCES, EPERM), or the process ran out of file "
              "descriptors (EMFILE). The message names the path and the errno; half-written files are removed "
              "when the run folder is next used.",
              "Free space (or point `--runs-dir` / `checkpoint.dir` elsewhere), fix the folder's permissions or "
              "raise `ulimit -n`, then `megaspec apply --resume RUN_DIR` from the last intact checkpoint."),
    "MS816": ("The fork server the ranks are forked from died (killed, out of memory) or stopped answering "
              "(SIGSTOP) while the ranks ran; the ranks ended with it. No rank is to blame.",
              "Look for what killed it (the OOM killer: `dmesg`), then `megaspec apply --resume RUN_DIR`."),
}


def _runtime_doc(code: str, name: str, summary: str, fix: str) -> str:
    status = "interrupted" if name == "interrupted" else "error"  # the one code a signal ends a run with
    return (f"{summary}\n\nReported in run receipts, not by `megaspec lint`.\n\n"
            "Why: the receipt names the failure class so a failed run is triaged without reading logs.\n\n"
            f"Example:\n    a receipt with `status: {status}` and `error.code: {code}`\n\nUse instead:\n    {fix}")


def register() -> None:
    for code, name in RUNTIME_CODES.items():
        summary, fix = _RUNTIME_DOCS[code]
        stage_rule(code, name, _runtime_doc(code, name, summary, fix))


register()
