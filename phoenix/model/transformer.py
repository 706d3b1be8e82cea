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
from phoenix.model.axes import linear, param, token_matmul
from phoenix.model.dropout import Dropout

_MASKED = -1e30
# Largest soft cap for which exp(capped logit) is safe in float32 without a max pass.
_MAX_FREE_CAP = 60.0
# Queries per block of causal attention (`query_blocks`): about the best on the 2-core CPU for
# 129 and 161 tokens (three and four blocks); 33 tokens stay one block.
_QUERY_BLOCK = 40


class RMSNorm(nnx.Module):
    """RMSNorm (eps 1e-5) computed in float32 with a learned scale."""

    def __init__(self, dim: int, *, eps: float = 1e-5):
        self.scale = param(jnp.ones((dim,), jnp.float32), ("norm",))
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
    def at(cls, positions: jnp.ndarray, head_dim: int, base: float, num_positions: int) -> Rotary:
        """Tables for integer positions [B, T] in [0, num_positions).

        sin and cos are evaluated once per position and gathered per token:
        left to itself XLA fuses them into every layer's rotation and pays
        two transcendentals per query and key element per layer.
        """
        half = head_dim // 2
        freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)  # [Dh/2]
        angles = jnp.arange(num_positions, dtype=jnp.float32)[:, None] * freqs  # [P, Dh/2]
        sin, cos = jax.lax.optimization_barrier((jnp.sin(angles), jnp.cos(angles)))
        return cls(sin[positions][:, :, None, :], cos[positions][:, :, None, :])  # [B, T, 1, Dh/2]


def apply_rope(x: jnp.ndarray, rope: Rotary) -> jnp.ndarray:
    """Rotate the last axis of x [B, T, N, Dh] by the tables' angles."""
    half = x.shape[-1] // 2
    x32 = x.astype(jnp.float32)
    x1, x2 = x32[..., :half], x32[..., half:]  # [B, T, N, Dh/2]
    rotated = jnp.concatenate([x1 * rope.cos - x2 * rope.sin, x2 * rope.cos + x1 * rope.sin], axis=-1)
    return rotated.astype(x.dtype)  # [B, T, N, Dh]


def query_blocks(num_tokens: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges of about `_QUERY_BLOCK` queries each, covering 0..num_tokens.

    Under a causal mask a block scores hi keys instead of num_tokens: with three
    blocks of 129 tokens the attention's forward and backward take about 60% of
    the single block's time on the CPU, more blocks add per-block overhead.
    """
    n = max(1, round(num_tokens / _QUERY_BLOCK))
    bounds = [0] + [round(num_tokens * (i + 1) / n) for i in range(n)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class GroupedQueryAttention(nnx.Module):
    """Multi-head attention where groups of query heads share one key/value head."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        d, dh = config.model_dim, config.head_dim
        dtype = jnp.dtype(config.compute_dtype)
        dense = dict(use_bias=False, dtype=dtype, rngs=rngs)
        self.q_proj = linear(d, config.num_q_heads * dh, ("embed", "q_heads"), **dense)
        self.k_proj = linear(d, config.num_kv_heads * dh, ("embed", "kv_heads"), **dense)
        self.v_proj = linear(d, config.num_kv_heads * dh, ("embed", "kv_heads"), **dense)
        self.out_proj = linear(config.num_q_heads * dh, d, ("q_heads", "embed"), **dense)
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = dh
        self.cap = config.attn_logit_cap

    def qkv(self, x: jnp.ndarray, rope: Rotary):
        """Rotated queries [B, T, G, R, Dh] and keys / values [B, T, G, Dh].

        One matmul against the three kernels side by side: on a CPU one
        [T, D] x [D, (Hq+2G)·Dh] product runs much nearer the matmul rate
        than three narrow ones.
        """
        g, dh = self.num_kv_heads, self.head_dim
        kernel = jnp.concatenate([self.q_proj.kernel.value, self.k_proj.kernel.value, self.v_proj.kernel.value], axis=1)
        qkv = token_matmul(x, kernel.astype(x.dtype))  # [B, T, (Hq+2G)·Dh]
        q, k, v = jnp.split(qkv, [self.q_proj.out_features, self.q_proj.out_features + g * dh], axis=-1)
        q = apply_rope(rearrange(q, "b t (n d) -> b t n d", d=dh), rope)  # [B, T, Hq, Dh]
        k = apply_rope(rearrange(k, "b t (g d) -> b t g d", d=dh), rope)  # [B, T, G, Dh]
        v = rearrange(v, "b t (g d) -> b t g d", d=dh)  # [B, T, G, Dh]
        return rearrange(q, "b t (g r) d -> b t g r d", g=g), k, v

    def _capped(self, logits: jnp.ndarray) -> jnp.ndarray:
        """Scale by 1/sqrt(Dh) and soft-cap with cap·tanh(x/cap), in float32."""
        logits = logits.astype(jnp.float32) / jnp.sqrt(jnp.float32(self.head_dim))
        return self.cap * jnp.tanh(logits / self.cap)

    def _weights(self, logits: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        """Masked float32 softmax of capped logits."""
        return jax.nn.softmax(jnp.where(mask, self._capped(logits), _MASKED), axis=-1)

    def __call__(
        self,
        x: jnp.ndarray,  # [B, T, D]
        rope: Rotary,  # tables for [B, T]
        mask: jnp.ndarray,  # [B, T, T] bool, causal: no token sees a later one
    ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:  # out [B, T, D], k and v [B, T, G, Dh]
        q, k, v = self.qkv(x, rope)
        # The mask is causal, so queries [lo, hi) see no key at or past hi: each block of queries
        # scores only the keys before its end, and the blocks skip most of the masked upper triangle.
        blocks = query_blocks(x.shape[1])
        out = jnp.concatenate(
            [self._attend(q[:, lo:hi], k[:, :hi], v[:, :hi], mask[:, lo:hi, :hi]) for lo, hi in blocks], axis=1
        )  # [B, T, G, R, Dh]
        return self.out_proj(rearrange(out, "b t g r d -> b t (g r d)")), k, v

    def _attend(
        self,
        q: jnp.ndarray,  # [B, Q, G, R, Dh] a block of queries
        k: jnp.ndarray,  # [B, S, G, Dh] the keys before the block's end
        v: jnp.ndarray,  # [B, S, G, Dh]
        mask: jnp.ndarray,  # [B, Q, S] bool
    ) -> jnp.ndarray:  # [B, Q, G, R, Dh]
        logits = jnp.einsum("btgrd,bsgd->bgrts", q, k, preferred_element_type=jnp.float32)  # [B, G, R, Q, S]
        weights = self._weights(logits, mask[:, None, None]).astype(v.dtype)  # [B, G, R, Q, S]
        return jnp.einsum("bgrts,bsgd->btgrd", weights, v)  # [B, Q, G, R, Dh]

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
        to_prefix = jnp.einsum("bcgrd,bsgd->bcgrs", q, prefix_k, preferred_element_type=jnp.float32)
        to_self = jnp.einsum("bcgrd,bcgd->bcgr", q, k, preferred_element_type=jnp.float32)
        sees = prefix_mask[:, :, None, None]  # [B, C, 1, 1, S]
        capped_prefix, capped_self = self._capped(to_prefix), self._capped(to_self)
        if self.cap <= _MAX_FREE_CAP:
            # Capped logits lie in [-cap, cap], so exp cannot overflow: skip the
            # max pass of a softmax and normalise once, after the value matmul.
            shift = jnp.zeros_like(capped_self)
        else:
            shift = jnp.maximum(jnp.max(jnp.where(sees, capped_prefix, _MASKED), axis=-1), capped_self)
        e_prefix = jnp.where(sees, jnp.exp(capped_prefix - shift[..., None]), 0)  # [B, C, G, R, S]
        e_self = jnp.exp(capped_self - shift)  # [B, C, G, R]
        total = jnp.sum(e_prefix, axis=-1) + e_self  # [B, C, G, R]
        out = jnp.einsum("bcgrs,bsgd->bcgrd", e_prefix.astype(v.dtype), prefix_v)  # [B, C, G, R, Dh]
        out = out + e_self[..., None].astype(v.dtype) * v[:, :, :, None]
        out = out / total[..., None].astype(v.dtype)
        return self.out_proj(rearrange(out, "b c g r d -> b c (g r d)"))  # [B, C, D]


class GatedGeluFFN(nnx.Module):
    """W_out(gelu(W_1 x) * V x), inner width from `ModelConfig.ffn_dim`."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        d, f = config.model_dim, config.ffn_dim
        dense = dict(use_bias=False, dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
        self.gate = linear(d, f, ("embed", "mlp"), **dense)
        self.value = linear(d, f, ("embed", "mlp"), **dense)
        self.out = linear(f, d, ("mlp", "embed"), **dense)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:  # [B, T, D] -> [B, T, D]
        kernel = jnp.concatenate([self.gate.kernel.value, self.value.kernel.value], axis=1).astype(x.dtype)
        gate, value = jnp.split(token_matmul(x, kernel), 2, axis=-1)  # [B, T, F] each
        return self.out(jax.nn.gelu(gate) * value)  # [B, T, D]


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
        # Residual dropout (off by default); `without_dropout(model)` turns it off for scoring.
        self.dropout = Dropout(config.dropout_rate, rngs=rngs)

    def _after_attention(self, x: jnp.ndarray, attn_out: jnp.ndarray) -> jnp.ndarray:
        h = x + self.dropout(self.attn_out_norm(attn_out))
        return h + self.dropout(self.ffn_out_norm(self.ffn(self.ffn_in_norm(h))))

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
