"""The machine's matmul rate: the roofline that ranking kernels are compared with.

Prints one JSON line per dtype: {"bench": "roofline", "dtype", "n", "ms_median", "gflops"}.
bfloat16 is measured too on accelerators (on this CPU it is no faster).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np


def matmul_rate(dtype: str, n: int = 2048, repeats: int = 20) -> dict:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype=dtype)
    b = jnp.asarray(np.random.default_rng(1).standard_normal((n, n)), dtype=dtype)
    f = jax.jit(jnp.dot)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    ms = float(np.median(times) * 1e3)
    return {"bench": "roofline", "dtype": dtype, "n": n, "ms_median": ms, "gflops": 2 * n**3 / (ms / 1e3) / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2048)
    args = parser.parse_args()
    dtypes = ["float32"] + (["bfloat16"] if jax.default_backend() != "cpu" else [])
    for dtype in dtypes:
        print(json.dumps({**matmul_rate(dtype, args.n), "backend": jax.default_backend()}))


if __name__ == "__main__":
    main()
