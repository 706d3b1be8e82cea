"""Causal attention by blocks of queries equals attention over every key at once."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import SMALL_MODEL

from phoenix.model.attention_mask import candidate_isolation_mask, prefix_mask, token_positions
from phoenix.model.transformer import GroupedQueryAttention, Rotary, query_blocks

HISTORY, CANDIDATES = 100, 20


@pytest.mark.parametrize("num_tokens", [1, 13, 33, 60, 101, 129, 161, 500])
def test_query_blocks_tile_the_sequence(num_tokens):
    blocks = query_blocks(num_tokens)
    assert blocks[0][0] == 0 and blocks[-1][1] == num_tokens
    assert all(hi == next_lo for (_, hi), (next_lo, _) in zip(blocks, blocks[1:], strict=False))
    sizes = [hi - lo for lo, hi in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert max(sizes) <= 60 and (len(blocks) == 1 or min(sizes) >= 20)


def _masks(rng):
    history_valid = jnp.asarray(np.arange(HISTORY)[None, :] < np.array([[HISTORY], [37]]))  # [2, H]
    cutoff = jnp.asarray(np.sort(rng.integers(0, HISTORY + 1, (2, CANDIDATES)), axis=1))  # [2, C]
    candidate_valid = jnp.ones((2, CANDIDATES), bool).at[1, -3:].set(False)
    return {
        "prefix": (prefix_mask(history_valid), jnp.broadcast_to(jnp.arange(1 + HISTORY), (2, 1 + HISTORY))),
        "isolation": (candidate_isolation_mask(history_valid, candidate_valid, cutoff),
                      token_positions(HISTORY, cutoff)),
    }


@pytest.mark.parametrize("which", ["prefix", "isolation"])
def test_blocked_attention_equals_one_block(which):
    config = dataclasses.replace(SMALL_MODEL, history_len=HISTORY, num_candidates=CANDIDATES)
    attn = GroupedQueryAttention(config, rngs=nnx.Rngs(3))
    mask, positions = _masks(np.random.default_rng(0))[which]  # [2, T, T], [2, T]
    t = mask.shape[1]
    assert len(query_blocks(t)) >= 3  # the case under test: several blocks
    rope = Rotary.at(positions, config.head_dim, config.rope_base, t)
    x = jax.random.normal(jax.random.key(1), (2, t, config.model_dim))  # [2, T, D]

    def blocked(x):  # [2, T, D]
        return attn(x, rope, mask)[0]

    def whole(x):  # [2, T, D]: every key for every query, one block
        q, k, v = attn.qkv(x, rope)
        return attn.out_proj(attn._attend(q, k, v, mask).reshape(2, t, -1))

    np.testing.assert_allclose(np.asarray(jax.jit(blocked)(x)), np.asarray(jax.jit(whole)(x)), atol=2e-5, rtol=1e-5)
    # Gradients too: training differentiates through the blocks.
    grads = [jax.jit(jax.grad(lambda x, f=f: jnp.sum(jnp.sin(f(x)))))(x) for f in (blocked, whole)]
    np.testing.assert_allclose(np.asarray(grads[0]), np.asarray(grads[1]), atol=2e-5, rtol=1e-4)
