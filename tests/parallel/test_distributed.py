import pytest

from phoenix.config import ConfigError
from phoenix.config.mesh import mesh_flag
from phoenix.parallel.distributed import launcher_arguments


def test_mesh_flag():
    assert mesh_flag("4x2") == {"data": 4, "model": 2}
    assert mesh_flag("0X8") == {"data": 0, "model": 8}
    with pytest.raises(ConfigError, match="--mesh: expected DATAxMODEL such as 4x2, got '4'"):
        mesh_flag("4")


def test_explicit_coordinator_variables_become_initialize_arguments():
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "2"}
    assert launcher_arguments(env) == {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 2}
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES and JAX_PROCESS_ID"):
        launcher_arguments({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_PROCESS_ID": "0"})


@pytest.mark.parametrize(
    "env, multi",
    [
        ({}, False),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, False),  # a one-task Slurm job is a single process
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}, True),
        ({"OMPI_COMM_WORLD_SIZE": "1"}, False),
        ({"OMPI_COMM_WORLD_SIZE": "8"}, True),
        ({"TPU_WORKER_HOSTNAMES": "t1v-0"}, False),  # a single-host TPU VM
        ({"TPU_WORKER_HOSTNAMES": "t1v-0,t1v-1,t1v-2,t1v-3"}, True),
    ],
)
def test_launchers_that_start_several_processes_are_detected(env, multi):
    # JAX's own cluster detection finds coordinator and ids for these: no explicit arguments.
    assert launcher_arguments(env) == ({} if multi else None)
