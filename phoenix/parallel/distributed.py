"""Multi-host start-up on JAX's own runtime (`jax.distributed`), driven by the launcher.

A job launched on several hosts must call `jax.distributed.initialize()` in
every process before touching a device. Whether it is such a job is written
in the environment the launcher sets:

    JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID   explicit (any launcher, or by hand)
    SLURM_JOB_ID with SLURM_NTASKS > 1                            `srun` on a Slurm GPU cluster
    OMPI_COMM_WORLD_SIZE > 1                                     `mpirun` (Open MPI)
    TPU_WORKER_HOSTNAMES listing several hosts                   a Cloud TPU pod slice

For the last three JAX finds the coordinator, process count and id itself.
A single-process run (the default everywhere else) initialises nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
from jax.experimental import multihost_utils


def launcher_arguments(environ: Mapping[str, str]) -> dict | None:
    """`jax.distributed.initialize` keyword arguments the environment asks for; None: single process."""
    if environ.get("JAX_COORDINATOR_ADDRESS"):
        try:
            return {
                "coordinator_address": environ["JAX_COORDINATOR_ADDRESS"],
                "num_processes": int(environ["JAX_NUM_PROCESSES"]),
                "process_id": int(environ["JAX_PROCESS_ID"]),
            }
        except (KeyError, ValueError) as err:
            raise ValueError(
                "JAX_COORDINATOR_ADDRESS is set, so JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers: "
                f"{err}"
            ) from err
    if environ.get("SLURM_JOB_ID") and int(environ.get("SLURM_NTASKS", "1")) > 1:
        return {}
    if int(environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        return {}
    if len([h for h in environ.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
        return {}
    return None


def initialize_from_environment(environ: Mapping[str, str] | None = None, force: bool = False) -> bool:
    """Join the multi-host job the launcher started, if any; returns whether this is one.

    `force` (`phoenix --distributed`) initialises even when no variable above is set, for
    launchers JAX detects by other means (e.g. GKE); JAX then finds the job itself.
    """
    arguments = launcher_arguments(os.environ if environ is None else environ)
    if arguments is None and not force:
        return False
    jax.distributed.initialize(**(arguments or {}))
    return True


def is_main_process() -> bool:
    return jax.process_index() == 0


def process_shard() -> tuple[int, int]:
    """(this process, number of processes): which slice of the input this process reads."""
    return jax.process_index(), jax.process_count()


def sync_processes(name: str) -> None:
    """Wait until every process reaches this point (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
