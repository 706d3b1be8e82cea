"""Real interaction logs: loading them, the next-item protocol, and the benchmark against baselines."""
