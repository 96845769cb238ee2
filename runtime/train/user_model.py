"""The user's own model (`model.entry`): import, build on the meta device, shard, materialize, init.

The contract is MS218's doc (`megaspec explain MS218`). The rank imports the entry from the
`model.code` folders and builds it before the process group exists (`prepare`), so a missing
module, a raising callable or a model without `layers` is a bootstrap error (MS814) naming the
user's file and line, never a hang at the first collective. The parameters are created on the
meta device (buffers keep the values `__init__` gave them: a causal mask, a rotary cache), FSDP2
shards each of `layers` and then the root (weights tied outside `layers` stay one parameter),
then `to_empty` allocates each rank's shards and `init_weights()` (or each submodule's
`reset_parameters()`) fills them. Random init is made the same on any number of ranks by
`sharded_random`: each random fill of a sharded parameter draws the whole tensor and keeps this
rank's shard, so the weights equal a one-process init from the same seed.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.distributed.tensor import DTensor
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
from torch.distributed.tensor.experimental import implicit_replication
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..contract.errors import UserModelError
from ..contract.plan import Plan, UserModelPlan
from ..contract.user_code import module_file, split_entry

_aten = torch.ops.aten
RANDOM_FILLS = frozenset({_aten.normal_, _aten.uniform_, _aten.bernoulli_, _aten.exponential_, _aten.random_,
                          _aten.cauchy_, _aten.log_normal_, _aten.geometric_})  # in-place, every overload
BACKWARD_FLOPS_FACTOR = 3  # forward + backward (two matmuls per forward one), as torchtitan's 6N counts


@dataclass
class UserModel:
    """What `prepare` built on the meta device: the model, its buffers' values, and what was counted."""

    model: nn.Module
    buffers: dict[str, torch.Tensor]
    num_params: int
    flops_per_token: int | None  # None: the model's forward could not run on the meta device


def _user_frame(exc: BaseException, folders: list[str]) -> str | None:
    """`file:line` of the innermost traceback frame in the user's code folders, if any."""
    inside = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(Path(f.filename).is_relative_to(folder) for folder in folders)]
    return f"{inside[-1].filename}:{inside[-1].lineno}" if inside else None


def _failure(what: str, exc: BaseException, user: UserModelPlan, fallback: str) -> UserModelError:
    where = _user_frame(exc, user.code) or fallback
    return UserModelError(f"{what} ({where}): {type(exc).__name__}: {exc}"[:1500])


def import_entry(user: UserModelPlan) -> Callable[..., nn.Module]:
    """The entry callable, imported with the code folders at the front of `sys.path` (the first folder wins)."""
    module_name, attr = split_entry(user.entry)
    path = module_file([Path(c) for c in user.code], module_name)
    if path is None:
        raise UserModelError(f"module `{module_name}` of `model.entry` is not in the code folders "
                             f"({', '.join(user.code) or 'none given'})")
    sys.path[:0] = [c for c in user.code if c not in sys.path]
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - whatever the user's module raises is their bootstrap error
        raise _failure(f"importing `{module_name}` failed", e, user, str(path)) from e
    entry = getattr(module, attr, None)
    if not callable(entry):
        raise UserModelError(f"`{attr}` is not a callable defined in `{getattr(module, '__file__', path)}`")
    return entry


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Every parameter registered meanwhile is moved to the meta device; buffers stay where they are made.
    A parameter already on meta is kept as is, so assigning one module's weight to another keeps the tie."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None and param.device.type != "meta":
            kept = module._parameters[name]
            module._parameters[name] = type(kept)(kept.to("meta"), requires_grad=kept.requires_grad)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def blocks(model: nn.Module) -> list[tuple[str | int, nn.Module]]:
    """The units of `model.layers` (ModuleList or ModuleDict values), each with its key in `layers`."""
    layers = model.layers
    return list(layers.items()) if isinstance(layers, nn.ModuleDict) else list(enumerate(layers))


def _check_module(model: object, user: UserModelPlan) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise UserModelError(f"`{user.entry}` returned a `{type(model).__name__}`, not a `torch.nn.Module`")
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.ModuleList | nn.ModuleDict) or len(layers) == 0:
        found = "no `layers` attribute" if layers is None else f"`layers` is a `{type(layers).__name__}`"
        raise UserModelError(f"`{user.entry}` returned a model with {found}: FSDP2 shards `model.layers`, which "
                             "must be a non-empty ModuleList (or ModuleDict) of the model's blocks")
    return model


def _build(entry: Callable[..., nn.Module], user: UserModelPlan, *, meta_only: bool) -> nn.Module:
    """`entry(**args)`: parameters on meta (buffers real), or everything on meta when `meta_only`."""
    scope = torch.device("meta") if meta_only else parameters_on_meta()
    try:
        with scope:
            return _check_module(entry(**user.args), user)
    except UserModelError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's callable raising is their bootstrap error
        raise _failure(f"`{user.entry}` raised", e, user, user.entry) from e


def count_flops(model: nn.Module, plan: Plan) -> int | None:
    """FLOPs per token of a training step (forward x 3), counted on the meta device over one micro-batch;
    checks the logits' shape on the way. None when the forward cannot run on meta (data-dependent code)."""
    t = plan.train
    tokens = torch.zeros(t.micro_batch, t.seq_len, dtype=torch.int64, device="meta")
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            logits = model(tokens)
    except Exception:  # noqa: BLE001 - meta cannot run every forward; the first real batch will tell
        return None
    check_logits(logits, plan)
    return BACKWARD_FLOPS_FACTOR * counter.get_total_flops() // (t.micro_batch * t.seq_len)


def check_logits(logits: object, plan: Plan) -> None:
    """The forward's output must be logits `[batch, seq, vocab_size]`."""
    t, vocab = plan.train, plan.model.vocab_size
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
    if shape is None or len(shape) != 3 or shape[2] != vocab or shape[1] != t.seq_len:
        got = f"`{list(shape)}`" if shape is not None else f"a `{type(logits).__name__}`"
        raise UserModelError(f"the forward of `{plan.model.user.entry}` returned {got}; expected logits "
                             f"`[batch, {t.seq_len}, {vocab}]` (`[batch, train.seq_len, model.vocab_size]`)")


def prepare(plan: Plan) -> UserModel:
    """Import and build the user's model on this rank before any collective: the model to shard (parameters
    on meta), its buffers' values, its parameter count and its FLOPs per token."""
    user = plan.model.user
    assert user is not None
    entry = import_entry(user)
    model = _build(entry, user, meta_only=False)
    flops = _declared_flops(model, plan)
    if flops is None:
        flops = count_flops(_build(entry, user, meta_only=True), plan)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers() if b.device.type != "meta"}
    unset = [name for name, b in model.named_buffers() if b.device.type == "meta"]
    if unset and not callable(getattr(model, "init_weights", None)):
        raise UserModelError(f"buffer `{unset[0]}` of `{user.entry}` is made from parameters in `__init__` (they are "
                             "on the meta device then): define `init_weights()` and fill it there")
    return UserModel(model, buffers, sum(p.numel() for p in model.parameters()), flops)


def _declared_flops(model: nn.Module, plan: Plan) -> int | None:
    declared = getattr(model, "flops_per_token", None)
    if declared is None:
        return None
    try:
        return int(declared(plan.train.seq_len))
    except Exception as e:  # noqa: BLE001
        raise _failure("`flops_per_token(seq_len)` raised", e, plan.model.user, plan.model.user.entry) from e


class sharded_random(TorchDispatchMode):  # noqa: N801 - used as a context manager, like torch's modes
    """A random fill of a sharded parameter draws the whole tensor from the global generator and keeps this
    rank's shard: the same values as on one process, whatever the number of ranks (one tensor at a time)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket not in RANDOM_FILLS or not isinstance(args[0], DTensor):
            return func(*args, **kwargs)
        sharded = args[0]
        local = sharded._local_tensor
        whole = torch.empty(sharded.shape, dtype=local.dtype, device=local.device)
        func(whole, *args[1:], **kwargs)
        shape, offset = compute_local_shape_and_global_offset(sharded.shape, sharded.device_mesh, sharded.placements)
        local.copy_(whole[tuple(slice(o, o + n) for o, n in zip(offset, shape, strict=True))])
        return sharded


def materialize(prepared: UserModel, plan: Plan, device: torch.device) -> None:
    """Allocate the sharded model on `device`, put the buffers back, and init the weights from the seed."""
    model, user = prepared.model, plan.model.user
    model.to_empty(device=device)
    with torch.no_grad():
        for name, value in prepared.buffers.items():
            model.get_buffer(name).copy_(value)
    torch.manual_seed(plan.train.seed)
    try:
        with torch.no_grad(), sharded_random(), implicit_replication():
            _init(model)
    except Exception as e:  # noqa: BLE001
        raise _failure("initializing the weights failed", e, user, user.entry) from e


def _init(model: nn.Module) -> None:
    """`init_weights()` when the model defines it; else `reset_parameters()` of every submodule that has one."""
    if callable(getattr(model, "init_weights", None)):
        model.init_weights()
        return
    for module in model.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()


def first_forward(model: nn.Module, inputs: torch.Tensor, plan: Plan) -> torch.Tensor:
    """The first real forward: a raise or wrong logits is the user's bootstrap error, before any step."""
    user = plan.model.user
    try:
        logits = model(inputs)
    except Exception as e:  # noqa: BLE001
        raise _failure(f"the forward of `{user.entry}` raised on the first batch", e, user, user.entry) from e
    check_logits(logits, plan)
    return logits


def main() -> None:
    """`python -m megaspec.runtime.train.user_model < plan.json`: the model built as a rank builds it (on the
    meta device, no process group), its parameters and FLOPs per token as one JSON line (`megaspec plan`)."""
    plan = Plan.from_json(sys.stdin.read())
    try:
        built = prepare(plan)
    except UserModelError as e:
        print(json.dumps({"error": str(e)}))
        return
    print(json.dumps({"num_params": built.num_params, "flops_per_token": built.flops_per_token}))


if __name__ == "__main__":
    main()
