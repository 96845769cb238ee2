"""Model presets and their arithmetic (parameters, FLOPs per token). Pure Python: no torch.

Shared by the compiler (cost estimates, lint) and the runtime (building the model, MFU).
The architecture is a Llama-style decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU MLP,
untied output head. `tiny` is the reduced-complexity diagnostic preset: it separates a hang or a
collective mistake from model complexity, and it trains on two CPU cores in seconds. Its 128 is a
default length, not a limit: the compiler gives it the run's `train.seq_len` (2048 and beyond), so
a hang is diagnosed at the real sequence length (rotary tables cost nothing; a 2-rank step at 2048
tokens takes about a second on two CPU cores).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelDims:
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    vocab_size: int
    max_seq_len: int

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # asdict() deep-copies: 10x slower


PRESETS: dict[str, ModelDims] = {
    "tiny": ModelDims(n_layers=2, d_model=64, n_heads=4, n_kv_heads=4, d_ff=192, vocab_size=256, max_seq_len=128),
    "dense-125m": ModelDims(n_layers=12, d_model=768, n_heads=12, n_kv_heads=12, d_ff=2048, vocab_size=32000,
                            max_seq_len=2048),
    "dense-350m": ModelDims(n_layers=24, d_model=1024, n_heads=16, n_kv_heads=16, d_ff=2816, vocab_size=32000,
                            max_seq_len=2048),
    "dense-1b": ModelDims(n_layers=16, d_model=2048, n_heads=16, n_kv_heads=8, d_ff=8192, vocab_size=32000,
                          max_seq_len=4096),
    "dense-3b": ModelDims(n_layers=28, d_model=3072, n_heads=24, n_kv_heads=8, d_ff=8192, vocab_size=32000,
                          max_seq_len=4096),
    "dense-8b": ModelDims(n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336, vocab_size=128256,
                          max_seq_len=8192),
}
DIAGNOSTIC_PRESET = "tiny"


def num_params(d: ModelDims) -> int:
    """Parameter count of the decoder (norm weights included, no biases)."""
    kv_dim = d.n_kv_heads * d.head_dim
    attn = d.d_model * d.d_model * 2 + d.d_model * kv_dim * 2  # q, o, k, v
    mlp = 3 * d.d_model * d.d_ff  # SwiGLU: w1, w2, w3
    per_layer = attn + mlp + 2 * d.d_model  # two RMSNorms
    return d.n_layers * per_layer + 2 * d.vocab_size * d.d_model + d.d_model  # embed + head + final norm


def num_embedding_params(d: ModelDims) -> int:
    return d.vocab_size * d.d_model


def flops_per_token(d: ModelDims, seq_len: int) -> int:
    """Training FLOPs per token, torchtitan's formula: 6(N - N_emb) + 6 L H (2 head_dim) T."""
    dense = 6 * (num_params(d) - num_embedding_params(d))
    attention = 6 * d.n_layers * d.n_heads * (2 * d.head_dim) * seq_len
    return dense + attention
