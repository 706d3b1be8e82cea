"""Grok-1 style transformer block: sandwich RMSNorm, GQA + RoPE, gated GELU.

    h   = x + RMSNorm(Attn(RMSNorm(x)))
    out = h + RMSNorm(FFN(RMSNorm(h)))

Attention logits are computed in float32, scaled by 1/sqrt(head_dim),
soft-capped with cap·tanh(x/cap), masked, and soft-maxed in float32 whatever
the compute dtype. Key/value heads are shared by groups of query heads and
never materialised per query head.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from phoenix.config import ModelConfig

_MASKED = -1e30


class RMSNorm(nnx.Module):
    """RMSNorm (eps 1e-5) computed in float32 with a learned scale."""

    def __init__(self, dim: int, *, eps: float = 1e-5):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32))
        self.eps = eps

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:  # [..., D] -> [..., D]
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (normed * self.scale.value).astype(x.dtype)


def apply_rope(x: jnp.ndarray, positions: jnp.ndarray, base: float) -> jnp.ndarray:
    """Rotary embedding on the last axis. x [B, T, N, Dh], positions [B, T]."""
    half = x.shape[-1] // 2
    freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)  # [Dh/2]
    angles = positions[..., None].astype(jnp.float32) * freqs  # [B, T, Dh/2]
    sin = jnp.sin(angles)[:, :, None, :]  # [B, T, 1, Dh/2]
    cos = jnp.cos(angles)[:, :, None, :]  # [B, T, 1, Dh/2]
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]  # [B, T, N, Dh/2]
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # [B, T, N, Dh]
    return rotated.astype(x.dtype)


class GroupedQueryAttention(nnx.Module):
    """Multi-head attention where groups of query heads share one key/value head."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        d, dh = config.model_dim, config.head_dim
        dtype = jnp.dtype(config.compute_dtype)
        linear = dict(use_bias=False, dtype=dtype, rngs=rngs)
        self.q_proj = nnx.Linear(d, config.num_q_heads * dh, **linear)
        self.k_proj = nnx.Linear(d, config.num_kv_heads * dh, **linear)
        self.v_proj = nnx.Linear(d, config.num_kv_heads * dh, **linear)
        self.out_proj = nnx.Linear(config.num_q_heads * dh, d, **linear)
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = dh
        self.cap = config.attn_logit_cap
        self.rope_base = config.rope_base

    def __call__(
        self,
        x: jnp.ndarray,  # [B, T, D]
        positions: jnp.ndarray,  # [B, T]
        mask: jnp.ndarray,  # [B, T, T] bool
    ) -> jnp.ndarray:  # [B, T, D]
        g, dh = self.num_kv_heads, self.head_dim
        q = rearrange(self.q_proj(x), "b t (n d) -> b t n d", d=dh)  # [B, T, Hq, Dh]
        k = rearrange(self.k_proj(x), "b t (g d) -> b t g d", d=dh)  # [B, T, G, Dh]
        v = rearrange(self.v_proj(x), "b t (g d) -> b t g d", d=dh)  # [B, T, G, Dh]
        q = apply_rope(q, positions, self.rope_base)
        k = apply_rope(k, positions, self.rope_base)
        q = rearrange(q, "b t (g r) d -> b t g r d", g=g)  # [B, T, G, R, Dh]

        logits = jnp.einsum("btgrd,bsgd->bgrts", q, k, preferred_element_type=jnp.float32)
        logits = logits / jnp.sqrt(jnp.float32(dh))  # [B, G, R, T, T]
        logits = self.cap * jnp.tanh(logits / self.cap)
        logits = jnp.where(mask[:, None, None], logits, _MASKED)
        weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)  # [B, G, R, T, T]

        out = jnp.einsum("bgrts,bsgd->btgrd", weights, v)  # [B, T, G, R, Dh]
        return self.out_proj(rearrange(out, "b t g r d -> b t (g r d)"))  # [B, T, D]


class GatedGeluFFN(nnx.Module):
    """W_out(gelu(W_1 x) * V x), inner width from `ModelConfig.ffn_dim`."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        d, f = config.model_dim, config.ffn_dim
        linear = dict(use_bias=False, dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
        self.gate = nnx.Linear(d, f, **linear)
        self.value = nnx.Linear(d, f, **linear)
        self.out = nnx.Linear(f, d, **linear)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:  # [B, T, D] -> [B, T, D]
        return self.out(jax.nn.gelu(self.gate(x)) * self.value(x))  # [B, T, D]


class TransformerBlock(nnx.Module):
    """One Grok-1 block with RMSNorm before and after each sub-layer."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        d = config.model_dim
        self.attn_in_norm = RMSNorm(d)
        self.attn = GroupedQueryAttention(config, rngs=rngs)
        self.attn_out_norm = RMSNorm(d)
        self.ffn_in_norm = RMSNorm(d)
        self.ffn = GatedGeluFFN(config, rngs=rngs)
        self.ffn_out_norm = RMSNorm(d)

    def __call__(
        self,
        x: jnp.ndarray,  # [B, T, D]
        positions: jnp.ndarray,  # [B, T]
        mask: jnp.ndarray,  # [B, T, T]
    ) -> jnp.ndarray:  # [B, T, D]
        h = x + self.attn_out_norm(self.attn(self.attn_in_norm(x), positions, mask))
        return h + self.ffn_out_norm(self.ffn(self.ffn_in_norm(h)))
