"""`fit`: the one training loop, for every model.

    fit(trainer, batches, validate, metric="valid_ndcg@10", workdir=...)

One loop runs the ranker, the two-tower model, Phoenix on a log and SASRec:

* steps: `trainer.step` on each batch that `batches(start, end)` yields, the
  dropout key a function of (seed, step), so a resumed run draws what the
  uninterrupted one would have;
* validation every `eval_every` (and at the end, and on the step or epoch that
  crosses `time_budget_s`), scored with an exponential moving average of the
  parameters when `average_decay` is set;
* early stopping: the best validated parameters are kept (on disk under
  `WORKDIR/best/`, or as a host copy without a workdir), training stops after
  `patience` without a better `metric`, and the model ends holding the best
  parameters;
* with a workdir: orbax checkpoints (`WORKDIR/checkpoints/`) every
  `checkpoint_every` and at the end, resumed from the latest, `metrics.jsonl`
  and a plot; without one (a benchmark in memory) the records come back in
  `FitResult.records`;
* a tqdm bar, and a clear error on a non-finite loss.

The schedule is the trainer's (`Trainer.schedule`); its cadences count in
its unit: steps, or epochs of `Trainer.steps_per_epoch` steps. Multi-process jobs validate afterwards from the
checkpoint (validation needs one host's view of the whole model).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from phoenix.config import ConfigError
from phoenix.parallel.distributed import is_main_process
from phoenix.training.metrics_log import MetricsLog
from phoenix.training.parameter_average import ParameterAverage
from phoenix.training.trainer import Trainer
from phoenix.workdir import (
    best_manager,
    checkpoint_manager,
    restore_best,
    restore_training_state,
    save_checkpoint,
)

# The dropout keys of step s are fold_in(root, s). The root is folded off the schedule's seed so
# that they never equal the keys `nnx.Rngs(seed)` draws when it initialises the same model
# (fold_in(key(seed), count)): masks and initial weights stay independent.
DROPOUT_STREAM = 2**31 - 1

Batches = Callable[[int, int], Iterable[tuple[int, tuple[Any, Any]]]]  # (start, end) -> (step, (batch, shared))


@dataclasses.dataclass
class FitResult:
    records: list[dict]  # every record: {"step", "loss"} and {"step", "valid_...": ...}, as metrics.jsonl holds
    best_step: int  # the step whose parameters the model ends with (-1: never validated)
    best_metric: float
    steps: int  # steps trained when training stopped
    seconds: float
    stopped_by: str  # "schedule", "patience", "time_budget" or "max_steps"
    steps_per_epoch: int = 1

    @property
    def validations(self) -> list[dict]:
        return [r for r in self.records if any(k.startswith("valid_") for k in r)]

    @property
    def best_record(self) -> dict:
        """The validation record of the kept parameters ({} if training never validated)."""
        return next((r for r in reversed(self.validations) if r["step"] == self.best_step), {})

    @property
    def best_epoch(self) -> int:
        """The epoch (counted from 1) that the kept parameters finished."""
        return -(-self.best_step // self.steps_per_epoch)


def fit(
    trainer: Trainer,
    batches: Batches,
    validate: Callable[[nnx.Module], dict[str, float]],
    *,
    metric: str,
    workdir: str | Path | None = None,
    progress: bool = True,
    max_steps: int | None = None,
    plot: Callable[[list[dict], Path], Any] | None = None,
) -> FitResult:
    """Train (or resume) until the schedule, patience or the time budget ends; see the module doc."""
    began = time.perf_counter()
    schedule, name, total = trainer.schedule, trainer.name, trainer.total_steps
    cadences = ("log_every", "eval_every", "checkpoint_every", "patience")
    every = {k: getattr(schedule, k) * trainer.steps_per_unit for k in cadences}  # in steps
    workdir = Path(workdir) if workdir is not None else None
    main = is_main_process()
    validating = jax.process_count() == 1
    if schedule.average_decay and workdir is not None:
        raise ConfigError("train.average_decay: the parameter average is not checkpointed; use it without a workdir")
    average = ParameterAverage(trainer.params(), schedule.average_decay) if schedule.average_decay else None

    manager = best = None
    start, best_step, best_metric, best_params, restored = 0, -1, -math.inf, None, None
    if workdir is not None:
        manager = checkpoint_manager(workdir, keep=schedule.keep_checkpoints)
        best = best_manager(workdir)
        model, optimizer = trainer.objects()
        restored = restore_training_state(manager, model, optimizer)
        if restored:
            trainer.load(model, optimizer)
            start = restored["step"]
            best_step, best_metric = restored.get("best_step", -1), restored.get("best_metric", -math.inf)
    log = MetricsLog(workdir / "metrics.jsonl", resume_step=start) if workdir is not None and main else None
    records = log.read() if log is not None else []

    def write(record: dict) -> None:
        if schedule.num_epochs:
            record = {**record, "epoch": record["step"] / trainer.steps_per_epoch}
        records.append(record)
        if log is not None:
            log.write(record)

    def progress_record() -> dict:
        # The losses since the last logged one travel with the checkpoint, so the first loss logged
        # after a resume averages the same steps as an uninterrupted run's.
        pending[:] = [float(x) for x in pending]
        return {"step": done, "best_step": best_step, "best_metric": best_metric, "pending_losses": list(pending)}

    end = total if max_steps is None else min(total, start + max_steps)
    stopped_by = "schedule" if end == total else "max_steps"
    dropout_root = jax.random.fold_in(jax.random.key(schedule.seed), DROPOUT_STREAM)
    pending: list = list((restored or {}).get("pending_losses", []))
    bar = tqdm(initial=start, total=total, desc=name, disable=not progress, leave=False)
    done = start
    for step, (batch, shared) in batches(start, end):
        pending.append(trainer.step(batch, shared, jax.random.fold_in(dropout_root, step)))
        if average is not None:
            average.update(trainer.params())
        bar.update()
        done = step + 1
        # The budget is looked at once per unit (every step, or at each epoch's end), so an epoch
        # schedule stops on a whole epoch, as its validation cadence expects.
        unit_ends = done % trainer.steps_per_unit == 0 or done == end
        elapsed = time.perf_counter() - began
        over_budget = unit_ends and schedule.time_budget_s > 0 and elapsed >= schedule.time_budget_s
        if done % every["log_every"] == 0 or done == total or over_budget:
            loss = float(np.mean([float(x) for x in pending]))
            pending.clear()
            if not math.isfinite(loss):
                raise FloatingPointError(f"{name}: training loss became {loss} by step {done}")
            write({"step": done, "loss": loss})
            bar.set_postfix(loss=f"{loss:.4f}")
        if validating and (done % every["eval_every"] == 0 or done == total or over_budget):
            model = trainer.model
            with average.swapped_in(model) if average is not None else nullcontext():
                record = {"step": done, **{f"valid_{k}": v for k, v in validate(model).items()}}
                if record[metric] > best_metric:
                    best_step, best_metric = done, float(record[metric])
                    if best is not None:
                        save_checkpoint(best, done, model, None, {"step": done, "metric": metric, "value": best_metric})
                    else:  # a host copy of what was scored (the average, when there is one)
                        best_params = jax.tree.map(np.array, nnx.state(model, nnx.Param))
            write(record)
            bar.set_postfix(best=f"{best_metric:.4f}@{best_step}")
        if manager is not None and done % every["checkpoint_every"] == 0:
            save_checkpoint(manager, done, *trainer.objects(), progress_record())
        if every["patience"] and best_step >= 0 and done - best_step >= every["patience"] and validating:
            stopped_by = "patience"
            break
        if over_budget:
            stopped_by = "time_budget"
            break
    bar.close()
    if manager is not None:
        if done > start and done % every["checkpoint_every"]:  # wherever training stopped, it resumes from here
            save_checkpoint(manager, done, *trainer.objects(), progress_record())
        manager.wait_until_finished()
        manager.close()
        best.wait_until_finished()
    if best_params is not None:
        trainer.load_params(best_params)
    elif best is not None and best.latest_step() is not None:
        model, optimizer = trainer.objects()
        restore_best(best, model)
        trainer.load(model, optimizer)
    if best is not None:
        best.close()
    if workdir is not None and main and plot is not None:
        plot(records, workdir / "training.png")
    return FitResult(
        records, best_step, best_metric, done, time.perf_counter() - began, stopped_by, trainer.steps_per_epoch
    )
