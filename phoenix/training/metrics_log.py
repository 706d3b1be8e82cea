"""JSON-lines metrics log that survives restarts without duplicate steps."""

from __future__ import annotations

import json
from pathlib import Path


class MetricsLog:
    """Append-only `metrics.jsonl`; on resume, records after the restored step are dropped."""

    def __init__(self, path: str | Path, resume_step: int):
        self.path = Path(path)
        kept = [r for r in self.read() if r.get("step", 0) <= resume_step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        tmp.replace(self.path)

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill ends the usable log
        return records

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
