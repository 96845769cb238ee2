"""The model the plan describes: a Llama-style decoder (RMSNorm, RoPE, GQA, SwiGLU, untied head).

Weights are initialised from the seed on every rank identically, before sharding, so a run's
losses do not depend on its world size. Blocks live in `layers` so FSDP, activation
checkpointing and compile can each wrap them one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..contract.presets import ModelDims


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(head_dim: int, max_seq_len: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1, x2) of each head: x is (batch, heads, seq, head_dim)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[: x.shape[-2]], sin[: x.shape[-2]]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, d: ModelDims):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = d.n_heads, d.n_kv_heads, d.head_dim
        self.wq = nn.Linear(d.d_model, d.n_heads * d.head_dim, bias=False)
        self.wk = nn.Linear(d.d_model, d.n_kv_heads * d.head_dim, bias=False)
        self.wv = nn.Linear(d.d_model, d.n_kv_heads * d.head_dim, bias=False)
        self.wo = nn.Linear(d.n_heads * d.head_dim, d.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             enable_gqa=self.n_kv_heads != self.n_heads)
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    def __init__(self, d: ModelDims):
        super().__init__()
        self.w1 = nn.Linear(d.d_model, d.d_ff, bias=False)
        self.w2 = nn.Linear(d.d_ff, d.d_model, bias=False)
        self.w3 = nn.Linear(d.d_model, d.d_ff, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, d: ModelDims):
        super().__init__()
        self.attention_norm, self.attention = RMSNorm(d.d_model), Attention(d)
        self.ffn_norm, self.feed_forward = RMSNorm(d.d_model), FeedForward(d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Decoder(nn.Module):
    def __init__(self, d: ModelDims):
        super().__init__()
        self.dims = d
        self.tok_embeddings = nn.Embedding(d.vocab_size, d.d_model)
        self.layers = nn.ModuleDict({str(i): Block(d) for i in range(d.n_layers)})
        self.norm = RMSNorm(d.d_model)
        self.output = nn.Linear(d.d_model, d.vocab_size, bias=False)
        # Buffers, not parameters: FSDP leaves them replicated; persistent=False keeps them out of checkpoints.
        self.register_buffer("rope_cos", torch.empty(d.max_seq_len, d.head_dim // 2), persistent=False)
        self.register_buffer("rope_sin", torch.empty(d.max_seq_len, d.head_dim // 2), persistent=False)

    def reset_buffers(self) -> None:
        cos, sin = rope_tables(self.dims.head_dim, self.dims.max_seq_len)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tok_embeddings(tokens)
        for block in self.layers.values():
            h = block(h, self.rope_cos, self.rope_sin)
        return self.output(self.norm(h)).float()


def init_weights(model: Decoder, seed: int) -> None:
    """Deterministic init from the seed alone: N(0, 0.02), output projections scaled by depth."""
    device = model.output.weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    depth_std = 0.02 / (2 * model.dims.n_layers) ** 0.5
    with torch.no_grad():
        model.reset_buffers()
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
                continue
            std = depth_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
            p.copy_(torch.randn(p.shape, generator=gen, device=device) * std)


def build_model(dims: ModelDims, seed: int, device: torch.device) -> Decoder:
    """Allocate on `device` (no host copy of a large model) and init from the seed, identically on
    every rank and before sharding, so losses do not depend on the world size."""
    with torch.device("meta"):
        model = Decoder(dims)
    model.to_empty(device=device)
    init_weights(model, seed)
    return model


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
