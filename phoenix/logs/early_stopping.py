"""Epochs with early stopping on validation NDCG@10, for Phoenix and SASRec alike.

Both models get the same rule: validate every `eval_every` epochs, stop after
`patience` epochs without a new best, and end with the best epoch's
parameters (a host copy of the nnx.Param state, or of the averaged parameters
when validation scores those), which the test split then scores. The per-epoch
history feeds the benchmark's plot.

A wall-clock `time_budget_s` (0: none) bounds a run on a large log: once an
epoch ends past the budget, that epoch is validated (if it was not already)
and training stops, so the cost is at most one epoch over the budget and the
result is still the best validated epoch. `FitResult.stopped_by` says which
rule ended training.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx
from tqdm.auto import tqdm


@dataclasses.dataclass
class FitResult:
    history: list[dict]  # per epoch: epoch, loss, valid hr@10 / ndcg@10
    best_epoch: int
    seconds: float
    stopped_by: str = "max_epochs"  # or "patience", "time_budget"


def fit_with_early_stopping(
    model: nnx.Module,
    run_epoch: Callable[[int], float],
    validate: Callable[[], dict[str, float]],
    max_epochs: int,
    patience: int,
    name: str,
    progress: bool = True,
    eval_every: int = 1,
    time_budget_s: float = 0.0,
    kept_state: Callable[[], nnx.State] | None = None,
) -> FitResult:
    """Train until patience, max_epochs or the budget; the model ends holding the best epoch's state.

    `kept_state` gives the parameters that `validate` scored (default: the
    model's own); a model validated with averaged parameters passes them here.
    """
    kept_state = kept_state or (lambda: nnx.state(model, nnx.Param))
    start = time.perf_counter()
    history: list[dict] = []
    best, best_epoch, best_state = -np.inf, -1, None
    stopped_by = "max_epochs"
    bar = tqdm(range(max_epochs), desc=name, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        loss = float(run_epoch(epoch))
        if not np.isfinite(loss):
            raise FloatingPointError(f"{name}: training loss became {loss} in epoch {epoch}")
        over_budget = time_budget_s > 0 and time.perf_counter() - start >= time_budget_s
        if (epoch + 1) % eval_every and epoch + 1 < max_epochs and not over_budget:
            continue
        metrics = validate()
        history.append({"epoch": epoch, "loss": loss, **{f"valid_{k}": v for k, v in metrics.items()}})
        if metrics["ndcg@10"] > best:
            best, best_epoch = metrics["ndcg@10"], epoch
            best_state = jax.tree.map(np.array, kept_state())
        bar.set_postfix(loss=f"{loss:.4f}", ndcg=f"{metrics['ndcg@10']:.4f}", best=f"{best:.4f}@{best_epoch}")
        if epoch - best_epoch >= patience:
            stopped_by = "patience"
            break
        if over_budget:
            stopped_by = "time_budget"
            break
    bar.close()
    if best_state is not None:
        nnx.update(model, best_state)
    return FitResult(history, best_epoch, time.perf_counter() - start, stopped_by)
