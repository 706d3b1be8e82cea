"""Grok-1 style transformer block: sandwich RMSNorm, GQA + RoPE, gated GELU.

    h   = x + RMSNorm(Attn(RMSNorm(x)))
    out = h + RMSNorm(FFN(RMSNorm(h)))

Attention logits are computed in float32, scaled by 1/sqrt(head_dim),
soft-capped with cap·tanh(x/cap), masked, and soft-maxed in float32 whatever
the compute dtype. Key/value heads are shared by groups of query heads and
never materialised per query head.
"""

from __future__ import annotations

from typing import NamedTuple

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


class Rotary(NamedTuple):
    """RoPE sin/cos tables for a request's positions, computed once and shared by every layer."""

    sin: jnp.ndarray  # [B, T, 1, Dh/2]
    cos: jnp.ndarray  # [B, T, 1, Dh/2]

    @classmethod
    def at(cls, positions: jnp.ndarray, head_dim: int, base: float) -> Rotary:  # positions [B, T]
        half = head_dim // 2
        freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)  # [Dh/2]
        angles = positions[..., None].astype(jnp.float32) * freqs  # [B, T, Dh/2]
        return cls(jnp.sin(angles)[:, :, None, :], jnp.cos(angles)[:, :, None, :])

    def rows(self, start: int, stop: int | None = None) -> Rotary:
        return Rotary(self.sin[:, start:stop], self.cos[:, start:stop])


def apply_rope(x: jnp.ndarray, rope: Rotary) -> jnp.ndarray:
    """Rotate the last axis of x [B, T, N, Dh] by the tables' angles."""
    half = x.shape[-1] // 2
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]  # [B, T, N, Dh/2]
    rotated = jnp.concatenate([x1 * rope.cos - x2 * rope.sin, x2 * rope.cos + x1 * rope.sin], axis=-1)
    return rotated.astype(x.dtype)  # [B, T, N, Dh]


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

    def qkv(self, x: jnp.ndarray, rope: Rotary):
        """Rotated queries [B, T, G, R, Dh] and keys / values [B, T, G, Dh]."""
        g, dh = self.num_kv_heads, self.head_dim
        q = rearrange(self.q_proj(x), "b t (n d) -> b t n d", d=dh)  # [B, T, Hq, Dh]
        k = rearrange(self.k_proj(x), "b t (g d) -> b t g d", d=dh)  # [B, T, G, Dh]
        v = rearrange(self.v_proj(x), "b t (g d) -> b t g d", d=dh)  # [B, T, G, Dh]
        q = apply_rope(q, rope)
        k = apply_rope(k, rope)
        return rearrange(q, "b t (g r) d -> b t g r d", g=g), k, v

    def _weights(self, logits: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        """Scale, soft-cap, mask and soft-max attention logits in float32."""
        logits = logits / jnp.sqrt(jnp.float32(self.head_dim))
        logits = self.cap * jnp.tanh(logits / self.cap)
        return jax.nn.softmax(jnp.where(mask, logits, _MASKED), axis=-1)

    def __call__(
        self,
        x: jnp.ndarray,  # [B, T, D]
        rope: Rotary,  # tables for [B, T]
        mask: jnp.ndarray,  # [B, T, T] bool
    ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:  # out [B, T, D], k and v [B, T, G, Dh]
        q, k, v = self.qkv(x, rope)
        logits = jnp.einsum("btgrd,bsgd->bgrts", q, k, preferred_element_type=jnp.float32)
        weights = self._weights(logits, mask[:, None, None]).astype(v.dtype)  # [B, G, R, T, T]
        out = jnp.einsum("bgrts,bsgd->btgrd", weights, v)  # [B, T, G, R, Dh]
        return self.out_proj(rearrange(out, "b t g r d -> b t (g r d)")), k, v

    def attend_to_prefix(
        self,
        x: jnp.ndarray,  # [B, C, D] candidate tokens
        rope: Rotary,  # tables for [B, C]
        prefix_k: jnp.ndarray,  # [B, S, G, Dh] cached user + history keys
        prefix_v: jnp.ndarray,  # [B, S, G, Dh]
        prefix_mask: jnp.ndarray,  # [B, C, S] bool
    ) -> jnp.ndarray:  # [B, C, D]
        """Candidates attend to the cached prefix and to themselves, never to each other.

        Cost is linear in C: each candidate scores S + 1 keys instead of the
        full sequence's S + C.
        """
        q, k, v = self.qkv(x, rope)  # q [B, C, G, R, Dh], k, v [B, C, G, Dh]
        to_prefix = jnp.einsum("bcgrd,bsgd->bgrcs", q, prefix_k, preferred_element_type=jnp.float32)
        to_self = jnp.einsum("bcgrd,bcgd->bgrc", q, k, preferred_element_type=jnp.float32)[..., None]
        logits = jnp.concatenate([to_prefix, to_self], axis=-1)  # [B, G, R, C, S+1]
        mask = jnp.concatenate([prefix_mask, jnp.ones(prefix_mask.shape[:2] + (1,), bool)], axis=-1)
        weights = self._weights(logits, mask[:, None, None]).astype(v.dtype)  # [B, G, R, C, S+1]
        out = jnp.einsum("bgrcs,bsgd->bcgrd", weights[..., :-1], prefix_v)  # [B, C, G, R, Dh]
        out = out + rearrange(weights[..., -1], "b g r c -> b c g r")[..., None] * v[:, :, :, None]
        return self.out_proj(rearrange(out, "b c g r d -> b c (g r d)"))  # [B, C, D]


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

    def _after_attention(self, x: jnp.ndarray, attn_out: jnp.ndarray) -> jnp.ndarray:
        h = x + self.attn_out_norm(attn_out)
        return h + self.ffn_out_norm(self.ffn(self.ffn_in_norm(h)))

    def __call__(
        self,
        x: jnp.ndarray,  # [B, T, D]
        rope: Rotary,  # tables for [B, T]
        mask: jnp.ndarray,  # [B, T, T]
    ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:  # out [B, T, D], this layer's k, v
        attn_out, k, v = self.attn(self.attn_in_norm(x), rope, mask)
        return self._after_attention(x, attn_out), k, v

    def candidates(
        self,
        x: jnp.ndarray,  # [B, C, D]
        rope: Rotary,  # tables for [B, C]
        prefix_k: jnp.ndarray,  # [B, S, G, Dh]
        prefix_v: jnp.ndarray,  # [B, S, G, Dh]
        prefix_mask: jnp.ndarray,  # [B, C, S]
    ) -> jnp.ndarray:  # [B, C, D]
        attn_out = self.attn.attend_to_prefix(self.attn_in_norm(x), rope, prefix_k, prefix_v, prefix_mask)
        return self._after_attention(x, attn_out)
