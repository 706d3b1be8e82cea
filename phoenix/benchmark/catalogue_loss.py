"""The catalogue cross-entropies of the match term, without materialising what they need not.

Phoenix on a log scores each training position's user state against a
catalogue sample shared by the batch (thousands of items): logits [B, P, S].
Written as plain JAX, autodiff keeps those logits, their mask, their softmax
and their softplus as whole [B, P, S] arrays and writes their gradient
transposed for the item-side matmul; at a few thousand positions that is tens
of megabytes per array, and on a CPU the transposed write is slower than all
the matmuls around it. Here the loss has its own gradient: the forward pass
keeps only two numbers per position (the log-sum-exp and the count of allowed
negatives), the backward pass recomputes the logits, and both walk the batch in
chunks of about `CHUNK_POSITIONS` positions, so every [chunk, S] intermediate
stays in cache; the gradient of the logits is formed once, positions leading,
and both its matmuls read it as it lies: the query side as grad @ items, the
item side transposed, as queries^T @ grad (a [N, S] sum turned once per step),
so the [chunk, S] gradient is never transposed. At these widths the
exponentials cost about as much as the matmuls, so each item pays one exp a
pass: the softplus (forward) and the sigmoid (backward) are read off the
softmax's exp(logit - top), exact algebra, switched back to the plain
functions in a chunk whose logits near float32's range. The results equal
`materialised_cross_entropies` (the plain definition, kept as the reference the
tests and `bench/logs_scale.py` compare against).

Both losses share the logits: the softmax of the true item among the sample,
and a sigmoid cross-entropy (true item 1, the mean over the allowed sample
items 0). A sample item is not a negative for a position when it has the true
item's hashes, or when it is one of the row's user's own items (`user_items`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

CHUNK_POSITIONS = 512  # [512, 2048] float32 logits: 4 MiB, about one core's share of the last-level cache
MASKED = -1e9
# The softplus and sigmoid are read off the softmax's exponentials (one exp an item instead of three)
# while a chunk's largest logit stays under this, far from float32's e^88; above it, the plain ones.
SHIFTED_UP_TO = 60.0

# (queries, target, items, positive hashes, catalogue, user items) -> per-position softmax and sigmoid NLL
CrossEntropies = Callable[..., tuple[jnp.ndarray, jnp.ndarray]]


def materialised_cross_entropies(
    queries: jnp.ndarray,  # [B, P, N] the match query at each true item's cutoff
    target: jnp.ndarray,  # [B, P] the true item's match logit
    items: jnp.ndarray,  # [S, N] the catalogue sample's post embeddings
    positive_hashes: jnp.ndarray,  # [B, P, K] the true items' hashes
    catalogue: jnp.ndarray,  # [S, K] the sample's hashes
    user_items: jnp.ndarray,  # [B, S] sample items the row's user trains on
) -> tuple[jnp.ndarray, jnp.ndarray]:  # [B, P] softmax and sigmoid cross-entropy per position
    """The plain definition: every [B, P, S] array built whole, differentiated by autodiff."""
    others = jnp.einsum("bpn,sn->bps", queries, items)  # [B, P, S]
    masked = _excluded(positive_hashes, catalogue, user_items)  # [B, P, S]
    logits = jnp.concatenate([target[..., None], jnp.where(masked, MASKED, others)], axis=-1)  # [B, P, 1+S]
    softmax_nll = jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1) - target  # [B, P]
    kept = (~masked).astype(jnp.float32)  # [B, P, S]
    negatives = (jax.nn.softplus(others.astype(jnp.float32)) * kept).sum(-1)  # [B, P]
    sigmoid_nll = jax.nn.softplus(-target.astype(jnp.float32)) + negatives / jnp.maximum(kept.sum(-1), 1.0)  # [B, P]
    return softmax_nll, sigmoid_nll


def _excluded(
    positive_hashes: jnp.ndarray,  # [b, P, K]
    catalogue: jnp.ndarray,  # [S, K]
    user_items: jnp.ndarray,  # [b, S]
) -> jnp.ndarray:  # [b, P, S] true where the sample item is not a negative for the position
    same_item = jnp.all(positive_hashes[:, :, None, :] == catalogue[None, None], axis=-1)  # [b, P, S]
    return same_item | user_items[:, None, :]


def _chunk_rows(rows: int, positions: int) -> int:
    """The largest divisor of `rows` whose chunk holds at most CHUNK_POSITIONS positions (at least one row)."""
    most = max(1, CHUNK_POSITIONS // max(positions, 1))
    return max(d for d in range(1, min(rows, most) + 1) if rows % d == 0)


def _chunked(x: jnp.ndarray, rows: int) -> jnp.ndarray:  # [B, ...] -> [B/rows, rows, ...]
    """Chunk j holds rows j, j + B/rows, j + 2·B/rows, ...: strided, so on a mesh that splits the
    batch into contiguous blocks every chunk is spread over every data shard."""
    return jnp.swapaxes(x.reshape(rows, x.shape[0] // rows, *x.shape[1:]), 0, 1)


def _merged(x: jnp.ndarray) -> jnp.ndarray:  # [B/rows, rows, ...] -> [B, ...], inverse of _chunked
    return jnp.swapaxes(x, 0, 1).reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _shifted_softplus(
    scaled: jnp.ndarray,  # [c, P, S] exp(logits - top)
    top: jnp.ndarray,  # [c, P] the largest allowed logit of each position
) -> jnp.ndarray:  # [c, P, S] softplus(logits), from the softmax's exponentials: one log an item, no exp
    shift = jnp.maximum(top, 0.0)[..., None]  # [c, P, 1] softplus(x) = s + log(e^-s + e^(x - s))
    return shift + jnp.log(jnp.exp(-shift) + scaled * jnp.exp(top[..., None] - shift))


def _sigmoid_of_softmax(
    softmax: jnp.ndarray,  # [c, P, S] exp(logits - lse)
    lse: jnp.ndarray,  # [c, P]
) -> jnp.ndarray:  # [c, P, S] sigmoid(logits) = e^x / (1 + e^x), with e^x = softmax · e^lse: no exp
    return softmax / (jnp.exp(-lse)[..., None] + softmax)


def _chunk_logits(q, e, hashes, catalogue, users):
    """One chunk's logits and the sample items that are not its negatives: [c, P, S] each."""
    return jnp.einsum("cpn,sn->cps", q, e), _excluded(hashes, catalogue, users)


@jax.custom_vjp
def catalogue_cross_entropies(
    queries: jnp.ndarray,  # [B, P, N]
    target: jnp.ndarray,  # [B, P]
    items: jnp.ndarray,  # [S, N]
    positive_hashes: jnp.ndarray,  # [B, P, K]
    catalogue: jnp.ndarray,  # [S, K]
    user_items: jnp.ndarray,  # [B, S]
) -> tuple[jnp.ndarray, jnp.ndarray]:  # [B, P] softmax and sigmoid cross-entropy per position
    """`materialised_cross_entropies`, computed chunk by chunk with a recomputing gradient."""
    return _forward(queries, target, items, positive_hashes, catalogue, user_items)[0]


def _forward(queries, target, items, positive_hashes, catalogue, user_items):
    b, p, _ = queries.shape
    rows = _chunk_rows(b, p)
    q32, t32, e32 = queries.astype(jnp.float32), target.astype(jnp.float32), items.astype(jnp.float32)

    def chunk(_, xs):
        q, t, hashes, users = xs  # [c, P, N], [c, P], [c, P, K], [c, S]
        others, excluded = _chunk_logits(q, e32, hashes, catalogue, users)  # [c, P, S] each
        allowed = jnp.where(excluded, MASKED, others)  # [c, P, S]
        top = allowed.max(-1)  # [c, P]
        scaled = jnp.exp(allowed - top[..., None])  # [c, P, S] the one exponential per item
        lse = jnp.logaddexp(t, top + jnp.log(scaled.sum(-1)))  # [c, P] over the true item and the allowed sample
        count = jnp.maximum((~excluded).sum(-1).astype(jnp.float32), 1.0)  # [c, P] allowed negatives
        softplus = jax.lax.cond(  # [c, P, S]
            top.max() < SHIFTED_UP_TO, lambda: _shifted_softplus(scaled, top), lambda: jax.nn.softplus(others))
        negatives = jnp.where(excluded, 0.0, softplus).sum(-1) / count  # [c, P]
        return None, (lse - t, jax.nn.softplus(-t) + negatives, lse, count)

    xs = tuple(_chunked(x, rows) for x in (q32, t32, positive_hashes, user_items))
    _, (softmax_nll, sigmoid_nll, lse, count) = jax.lax.scan(chunk, None, xs)  # each [B/c, c, P]
    residuals = (queries, target, items, positive_hashes, catalogue, user_items, _merged(lse), _merged(count))
    return (_merged(softmax_nll), _merged(sigmoid_nll)), residuals


def _backward(residuals, cotangents):
    queries, target, items, positive_hashes, catalogue, user_items, lse, count = residuals
    d_softmax, d_sigmoid = cotangents  # [B, P] each
    b, p, _ = queries.shape
    rows = _chunk_rows(b, p)
    q32, t32, e32 = queries.astype(jnp.float32), target.astype(jnp.float32), items.astype(jnp.float32)

    def chunk(d_items_t, xs):
        q, hashes, users, count, top, g_soft, g_sig = xs  # [c, P, N], [c, P, K], [c, S], then [c, P] each
        others, excluded = _chunk_logits(q, e32, hashes, catalogue, users)  # [c, P, S] each
        softmax = jnp.exp(others - top[..., None])  # [c, P, S] each sample item's softmax probability
        sigmoid = jax.lax.cond(  # [c, P, S] d softplus / d logit
            top.max() < SHIFTED_UP_TO, lambda: _sigmoid_of_softmax(softmax, top), lambda: jax.nn.sigmoid(others))
        grad = jnp.where(excluded, 0.0, g_soft[..., None] * softmax + (g_sig / count)[..., None] * sigmoid)  # [c, P, S]
        d_q = jnp.einsum("cps,sn->cpn", grad, e32)  # [c, P, N]
        # Contracting positions with `grad` as the right operand reads it row by row; `grad` as the
        # left one ("cps,cpn->sn") made XLA transpose it first, which cost more than recomputing it.
        d_items_t = d_items_t + jnp.einsum("ncp,cps->ns", jnp.moveaxis(q, -1, 0), grad)  # [N, S]
        return d_items_t, d_q

    xs = tuple(_chunked(x, rows) for x in (q32, positive_hashes, user_items, count, lse, d_softmax, d_sigmoid))
    d_items_t, d_queries = jax.lax.scan(chunk, jnp.zeros_like(e32.T), xs)  # [N, S], [B/c, c, P, N]
    # The true item's own logit: its softmax probability less one, and the sigmoid's -sigmoid(-t).
    d_target = d_softmax * (jnp.exp(t32 - lse) - 1.0) - d_sigmoid * jax.nn.sigmoid(-t32)  # [B, P]
    return (
        _merged(d_queries).astype(queries.dtype),
        d_target.astype(target.dtype),
        d_items_t.T.astype(items.dtype),
        None, None, None,
    )


catalogue_cross_entropies.defvjp(_forward, _backward)
