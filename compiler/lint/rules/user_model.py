"""Lint rules MS218-MS222, the user's own model (`model.entry`): read, never imported.

The contract (what `entry` must return) is in MS218's doc, the one `megaspec explain` prints. Lint
finds the module in the `model.code` folders and reads it as an AST: a missing folder, module or
callable is reported where the spec names it, before an image is built. What only running the code
can tell (the callable raises, returns no `layers`, wrong logits) is the runtime's bootstrap error.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from megaspec.runtime.contract.presets import ModelDims
from megaspec.runtime.contract.user_code import code_folders, module_file, split_entry

from .registry import RuleContext, rule

MAX_SOURCE_BYTES = 4 << 20  # a model module larger than this is not read (the runtime still imports it)
DIMENSIONS = tuple(f for f in ModelDims.__dataclass_fields__ if f != "vocab_size")


def _folders(ctx: RuleContext) -> list[Path] | None:
    """The `model.code` folders, absolute; None when the spec has no file to be relative to."""
    if ctx.code_dir is None:
        return None
    return code_folders(ctx.code_dir, ctx.spec.model.code)


@rule("MS218", "model-entry-with-preset")
def model_entry_with_preset(ctx: RuleContext) -> None:
    """Checks that a spec with your own model (`model.entry`) names no preset and no preset dimension.

    The contract: `entry` (`package.module:callable`) is imported from the `model.code` folders
    (relative to the file listing them, put on `sys.path`, shipped to the Modal image) and called with
    `model.args` as keyword arguments, its parameters created on the meta device (buffers are
    made as written). It returns a `torch.nn.Module` with:
    `layers`, a ModuleList (or a ModuleDict whose values are the blocks): the units FSDP2 shards
    one by one, `train.compile` compiles and `train.activation_checkpointing` wraps;
    `forward(tokens)`, int64 `[batch, seq]` -> logits `[batch, seq, model.vocab_size]`; optionally
    `init_weights()`, called once the parameters are materialized (else each submodule's
    `reset_parameters()`), and `flops_per_token(seq_len)` for MFU (else the FLOPs of one
    micro-batch are counted once). Buffers keep the values `__init__` gave them (one computed
    from parameters is filled by `init_weights()`); weights tied outside `layers` stay tied.
    Random init is the same on any number of ranks.

    Why: a preset and its dimensions describe megaspec's own decoder; beside `entry` they would
    be silently ignored, and the plan would name a model that is not the one trained.

    Example:
        preset: dense-1b
        model: {entry: "mymodels.gpt:build", code: [src], vocab_size: 32000}

    Use instead:
        model: {entry: "mymodels.gpt:build", code: [src], args: {n_layers: 8}, vocab_size: 32000}
    """
    if ctx.spec.model.entry is None:
        return
    entry = [ctx.related(("model", "entry"), "your model named here")]
    if ctx.spec.preset is not None:
        ctx.report(("preset",), f"`preset` `{ctx.spec.preset}` with `model.entry`: the preset's model is not the "
                   "one trained", hint="Remove `preset:`; pass your model's sizes in `model.args`", related=entry)
    for name in DIMENSIONS:
        if ctx.set(("model", name)):
            ctx.report(("model", name), f"`model.{name}` is a preset dimension; `model.entry` builds its model "
                       "from `model.args`", hint=f"Move `{name}` into `model.args` if your callable takes it",
                       key=True, related=entry)


@rule("MS219", "model-entry-incomplete")
def model_entry_incomplete(ctx: RuleContext) -> None:
    """Checks that your own model has `model.vocab_size` and `train.seq_len`, and `code`/`args` an `entry`.

    With `model.entry`, both numbers must be written; `model.code` or `model.args` without
    `model.entry` is reported too.

    Why: `vocab_size` is the width the logits are checked against and the bound every token id
    of the data must stay below; `seq_len` is the length of every sequence (a preset has a
    `max_seq_len` default, your code does not). `code` and `args` without `entry` would be ignored.

    Example:
        model: {entry: "mymodels.gpt:build", code: [src]}

    Use instead:
        model: {entry: "mymodels.gpt:build", code: [src], vocab_size: 32000}
        train: {seq_len: 1024}
    """
    m = ctx.spec.model
    if m.entry is None:
        for name in ("code", "args"):
            if ctx.set(("model", name)):
                ctx.report(("model", name), f"`model.{name}` without `model.entry`: nothing uses it", key=True,
                           hint="Name your model's callable in `model.entry: package.module:callable`, or remove it")
        return
    if m.vocab_size is None:
        ctx.report(("model", "entry"), "`model.entry` without `model.vocab_size`: the logits' width is unknown",
                   hint="Set `model.vocab_size` to your model's vocabulary size", key=True)
    if ctx.spec.train.seq_len is None:
        ctx.report(("model", "entry"), "`model.entry` without `train.seq_len`: your model has no default length",
                   hint="Set `train.seq_len`, e.g. `train: {seq_len: 1024}`", key=True)


@rule("MS220", "model-code-not-found")
def model_code_not_found(ctx: RuleContext) -> None:
    """Checks that each `model.code` folder exists and is a folder.

    Why: the folders are put on `sys.path` and shipped into the Modal image; a missing one fails
    the image build or the first import inside the container, after the GPUs are requested.

    Example:
        model: {entry: "mymodels.gpt:build", code: [scr]}

    Use instead:
        model: {entry: "mymodels.gpt:build", code: [src]}
    """
    folders = _folders(ctx)
    for index, folder in enumerate(folders or []):
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            ctx.report(("model", "code", index), f"`model.code` folder `{ctx.spec.model.code[index]}` {what}",
                       hint="Give a folder relative to this spec file that holds your model's package")


@rule("MS221", "model-entry-module-missing")
def model_entry_module_missing(ctx: RuleContext) -> None:
    """Checks that the module of `model.entry` is in one of the `model.code` folders.

    Why: the rank imports it with only those folders added to `sys.path`; a module found here by
    accident (installed, or beside the current directory) would not be in the Modal image.

    Example:
        model: {entry: "mymodels.gtp:build", code: [src]}   # src/mymodels/gpt.py

    Use instead:
        model: {entry: "mymodels.gpt:build", code: [src]}
    """
    folders, entry = _folders(ctx), ctx.spec.model.entry
    if entry is None or folders is None or module_file(folders, split_entry(entry)[0]) is not None:
        return
    module = split_entry(entry)[0]
    wanted = "/".join(module.split(".")) + ".py"
    where = ", ".join(f"`{c}`" for c in ctx.spec.model.code) if folders else "no `model.code` folder is given"
    ctx.report(("model", "entry"), f"module `{module}` (`{wanted}`) is not in the `model.code` folders ({where})",
               hint=f"Add the folder that holds `{wanted}` to `model.code`, or correct the module in `model.entry`")


def _defined_names(tree: ast.Module) -> set[str]:
    """Names bound at module level: defs, classes, assignments and imports (also inside if/try/with)."""
    names: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for field in ("body", "orelse", "finalbody", "handlers"):
            if isinstance(node, ast.If | ast.Try | ast.With | ast.ExceptHandler):
                body.extend(getattr(node, field, []))
    return names


def _problem(path: Path, shown: str, attr: str) -> str | None:
    """Why `attr` cannot be called from `path` (`shown` relative to `model.code`'s folder) as read, or None."""
    if path.stat().st_size > MAX_SOURCE_BYTES:
        return None  # too large to read here; the rank's import decides
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as e:
        return f"`{shown}` does not parse (line {e.lineno}: {e.msg})"
    except (OSError, ValueError) as e:
        return f"`{shown}` cannot be read ({e.__class__.__name__})"
    return None if attr in _defined_names(tree) else f"`{attr}` is not defined at the top level of `{shown}`"


@rule("MS222", "model-entry-callable-missing")
def model_entry_callable_missing(ctx: RuleContext) -> None:
    """Checks that the callable of `model.entry` is defined at the top level of a module that parses.

    Why: the rank imports the module and calls `callable(**model.args)`; a misspelled name or a
    syntax error would stop every rank at bootstrap. The module is read, never imported: a `def`,
    a `class`, an assignment or an import at module level counts.

    Example:
        model: {entry: "mymodels.gpt:biuld", code: [src]}

    Use instead:
        model: {entry: "mymodels.gpt:build", code: [src]}
    """
    folders, entry = _folders(ctx), ctx.spec.model.entry
    if entry is None or folders is None:
        return
    module, attr = split_entry(entry)
    path = module_file(folders, module)
    if path is None or ctx.code_dir is None:
        return
    shown = Path(os.path.relpath(path, ctx.code_dir)).as_posix()
    if (problem := _problem(path, shown, attr)) is not None:
        ctx.report(("model", "entry"), problem,
                   hint=f"Define `{attr}` in `{path.name}` (a function or class returning your model), "
                        "or name the one it defines")
