"""The user's model on one process, no process group: the meta build keeps buffers and ties, `layers` may be a
ModuleList or a ModuleDict, and the FLOPs and logits checks run on the meta device."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from megaspec.runtime.contract.errors import UserModelError
from megaspec.runtime.train.user_model import blocks, check_logits, parameters_on_meta, prepare
from tests.conftest import REPO_ROOT

from .conftest import make_plan

CODE = REPO_ROOT / "examples" / "own-model" / "src"
ARGS = {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 16}


def example_plan(**args):
    model = {"entry": "ownmodels.gpt:build", "code": [str(CODE)], "args": {**ARGS, **args}, "vocab_size": 64}
    return make_plan(1, global_batch=2, seq_len=16, preset=None, model=model)


def test_parameters_go_to_meta_while_buffers_and_ties_stay():
    with parameters_on_meta():
        head = nn.Linear(4, 8, bias=False)
        emb = nn.Embedding(8, 4)
        head.weight = emb.weight
        module = nn.Module()
        module.register_buffer("mask", torch.tril(torch.ones(3, 3)))
    assert emb.weight.is_meta and head.weight is emb.weight
    assert torch.equal(module.mask, torch.tril(torch.ones(3, 3)))
    assert not nn.Linear(2, 2).weight.is_meta  # only inside the block


def test_the_example_is_built_on_meta_with_its_mask_counted_and_checked():
    built = prepare(example_plan())
    assert all(p.is_meta for p in built.model.parameters())
    assert set(built.buffers) == {"mask"} and torch.equal(built.buffers["mask"], torch.tril(torch.ones(16, 16)))
    assert built.num_params == sum(p.numel() for p in built.model.parameters())
    assert built.flops_per_token and built.flops_per_token > 6 * (built.num_params - 64 * 32 - 16 * 32)


def test_layers_may_be_a_module_list_or_a_module_dict():
    listed, keyed = nn.Module(), nn.Module()
    listed.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    keyed.layers = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.Linear(2, 2)})
    assert [k for k, _ in blocks(listed)] == [0, 1] and [k for k, _ in blocks(keyed)] == ["a", "b"]


def test_logits_of_another_width_or_length_are_refused_naming_the_expected_shape():
    plan = example_plan()
    check_logits(torch.empty(2, 16, 64, device="meta"), plan)
    for wrong in (torch.empty(2, 16, 63), torch.empty(2, 15, 64), torch.empty(2, 64), (torch.empty(2, 16, 64),)):
        with pytest.raises(UserModelError, match=r"expected logits `\[batch, 16, 64\]`"):
            check_logits(wrong, plan)


def test_an_unknown_keyword_argument_is_the_users_bootstrap_error():
    with pytest.raises(UserModelError, match="`ownmodels.gpt:build` raised .*TypeError.*width"):
        prepare(example_plan(width=3))


def test_a_declared_flops_per_token_is_taken_as_declared(tmp_path):
    (tmp_path / "declared.py").write_text(
        "from torch import nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.emb = nn.Embedding(64, 8)\n        self.layers = nn.ModuleList([nn.Linear(8, 8)])\n"
        "        self.head = nn.Linear(8, 64)\n\n    def forward(self, tokens):\n"
        "        return self.head(self.layers[0](self.emb(tokens)))\n\n"
        "    def flops_per_token(self, seq_len):\n        return 1000 + seq_len\n\n\ndef build(**kwargs):\n"
        "    return M()\n", encoding="utf-8")
    plan = example_plan()
    user = plan.model.user.model_copy(update={"entry": "declared:build", "code": [str(tmp_path)]})
    plan = plan.model_copy(update={"model": plan.model.model_copy(update={"user": user})})
    assert prepare(plan).flops_per_token == 1016


def test_a_buffer_made_from_parameters_needs_init_weights_to_fill_it(tmp_path):
    (tmp_path / "derived.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.emb = nn.Embedding(64, 8)\n        self.layers = nn.ModuleList([nn.Linear(8, 8)])\n"
        "        self.register_buffer('scale', self.emb.weight.detach().norm(dim=1))\n\n"
        "    def forward(self, tokens):\n        return self.emb(tokens) @ self.emb.weight.T\n\n\n"
        "def build(**kwargs):\n    return M()\n", encoding="utf-8")
    plan = example_plan()
    user = plan.model.user.model_copy(update={"entry": "derived:build", "code": [str(tmp_path)]})
    plan = plan.model_copy(update={"model": plan.model.model_copy(update={"user": user})})
    with pytest.raises(UserModelError, match="buffer `scale` .* define `init_weights\\(\\)` and fill it there"):
        prepare(plan)
