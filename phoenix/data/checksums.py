"""Checksums of a directory's files: how a checkpoint step proves it is what was written.

`write_checksums(dir)` records a SHA-256 of every file under `dir` in
`phoenix_checksums.json`, written last and renamed into place; `verify_checksums`
fails naming the first file that is missing, extra or different, or the
directory when it has no checksums at all (an interrupted save).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHECKSUM_FILE = "phoenix_checksums.json"


class ChecksumError(ValueError):
    """A directory whose files do not match their recorded checksums (names the file)."""


def file_digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != CHECKSUM_FILE}


def write_checksums(directory: Path) -> None:
    tmp = directory / (CHECKSUM_FILE + ".tmp")
    tmp.write_text(json.dumps(file_digests(directory), indent=0))
    os.replace(tmp, directory / CHECKSUM_FILE)


def verify_checksums(directory: Path) -> None:
    recorded_path = directory / CHECKSUM_FILE
    if not recorded_path.is_file():
        raise ChecksumError(f"{directory}: no checksums (the save was interrupted, or an older Phoenix wrote it)")
    try:
        recorded = json.loads(recorded_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ChecksumError(f"{recorded_path}: unreadable checksums ({err})") from err
    actual = file_digests(directory)
    for name in sorted(set(recorded) | set(actual)):
        if recorded.get(name) != actual.get(name):
            what = ("is missing" if name not in actual else "is not in the checksums" if name not in recorded
                    else "does not match its checksum")
            raise ChecksumError(f"{directory / name}: {what}")
