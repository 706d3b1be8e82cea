"""Dropout off for scoring, back on for training.

Models with `model.dropout_rate` > 0 (the ranker) or SASRec's dropout must
score deterministically; validation runs between training epochs, so the
switch has to come back on afterwards, also when scoring raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flax import nnx


@contextmanager
def without_dropout(model: nnx.Module) -> Iterator[nnx.Module]:
    """Every `nnx.Dropout` inside `model` is an identity within the block."""
    model.set_attributes(deterministic=True, raise_if_not_found=False)
    try:
        yield model
    finally:
        model.set_attributes(deterministic=False, raise_if_not_found=False)
