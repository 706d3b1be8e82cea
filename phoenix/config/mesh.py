"""`[mesh]`: how training lays the model over devices, as named `data` x `model` axes.

The batch is split over `data`; every hashed embedding table is split by rows
over `model`; transformer weights are replicated, or split over `model` when
`shard_transformer` is set. The same config runs on one CPU (a 1x1 mesh), a
multi-GPU host or a TPU pod slice: only the device count changes.
"""

from __future__ import annotations

import dataclasses

from phoenix.config.validation import ConfigError, require


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """Mesh axis sizes; `data = 0` takes every device that `model` leaves over."""

    data: int = 0
    model: int = 1
    shard_transformer: bool = False

    def __post_init__(self) -> None:
        require(self.data >= 0, "mesh.data", "must be >= 0 (0: all devices left over by mesh.model)")
        require(self.model >= 1, "mesh.model", "must be at least 1")

    def axis_sizes(self, num_devices: int) -> tuple[int, int]:
        """(data, model) for `num_devices` devices; raises naming the field that does not fit."""
        require(
            num_devices % self.model == 0,
            "mesh.model",
            f"{self.model} does not divide the {num_devices} available device(s)",
        )
        data = self.data or num_devices // self.model
        require(
            data * self.model == num_devices,
            "mesh.data",
            f"data {data} x model {self.model} = {data * self.model} devices, but {num_devices} are available",
        )
        return data, self.model


def mesh_flag(text: str) -> dict[str, int]:
    """A `--mesh DATAxMODEL` flag (e.g. '4x2'; DATA 0: every device left over) as a [mesh] override."""
    try:
        data, model = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--mesh: expected DATAxMODEL such as 4x2, got {text!r}") from None
    return {"data": data, "model": model}
