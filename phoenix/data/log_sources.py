"""Reading a user's log files as a stream of Arrow record batches, each with its location.

A source is a file, a directory (its .parquet/.pq/.csv/.tsv/.tab files, sorted
by name) or a glob. Parquet is read a row group at a time; CSV and TSV a block
at a time, every column as text (so a stray "abc" in a numeric column becomes
one malformed row, reported by line, rather than a failed file). Nothing is
read whole into memory.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv"}
DELIMITERS = {"csv": ",", "tsv": "\t"}


class LogFileError(ValueError):
    """A log file that cannot be imported; the message names the file (and column or line)."""


@dataclasses.dataclass(frozen=True)
class Batch:
    """Rows of one file: `first_row` is the 0-based row of the file where they start."""

    path: Path
    kind: str  # parquet | csv | tsv
    first_row: int
    table: pa.RecordBatch
    skipped_lines: list[int] = dataclasses.field(default_factory=list)  # CSV lines left out, ascending

    def where(self, row: int) -> str:
        """A row's location as a user finds it: a CSV line (header is line 1) or a Parquet row."""
        index = self.first_row + row
        if self.kind == "parquet":
            return f"{self.path} row {index}"
        line = index + 2
        for skipped in self.skipped_lines:  # each line left out before this row pushes it one line down
            if skipped > line:
                break
            line += 1
        return f"{self.path}:{line}"


def resolve_files(source: str | Path | list, file_format: str = "auto") -> list[tuple[Path, str]]:
    """(path, format) of every file a source names, in a fixed order; fails naming the source."""
    sources = source if isinstance(source, list | tuple) else [source]
    files: list[Path] = []
    for item in sources:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise LogFileError(f"{path}: directory holds no .parquet, .csv or .tsv files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif any(ch in str(item) for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file())
            if not found:
                raise LogFileError(f"{item}: no file matches")
            files.extend(found)
        else:
            raise LogFileError(f"{path}: log file not found")
    out = []
    for path in files:
        kind = file_format if file_format != "auto" else SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise LogFileError(f"{path}: unknown log format (use .parquet, .csv or .tsv, or --format)")
        out.append((path, kind))
    return out


def file_columns(path: Path, kind: str) -> list[str]:
    """The column names of a log file, read without reading its rows."""
    if kind == "parquet":
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as err:  # pyarrow raises several types for unreadable files
            raise LogFileError(f"{path}: not a readable Parquet file ({err})") from err
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a byte-order mark is not a name
            header = next(csv.reader(handle, delimiter=DELIMITERS[kind]), None)
    except UnicodeDecodeError as err:
        raise LogFileError(f"{path}: not UTF-8 text ({err})") from err
    if not header or not any(name.strip() for name in header):
        raise LogFileError(f"{path}: empty file, or no header line naming the columns")
    return header


def read_batches(
    path: Path, kind: str, columns: list[str], bad_lines: list[tuple[str, str]], rows_per_batch: int = 1 << 20
) -> Iterator[Batch]:
    """The file's `columns` in batches (CSV and TSV as text); errors name the file.

    A CSV line with the wrong number of fields is left out of the batches and
    appended to `bad_lines` as (location, reason), for the import to report.
    """
    first = 0
    if kind == "parquet":
        try:
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=rows_per_batch, columns=columns):
                yield Batch(path, kind, first, batch)
                first += batch.num_rows
        except (pa.ArrowException, OSError) as err:
            raise LogFileError(f"{path}: unreadable or corrupt Parquet: {err}") from err
        return
    header = file_columns(path, kind)
    skipped: list[int] = []

    def invalid(row) -> str:
        skipped.append(row.number)
        bad_lines.append((f"{path}:{row.number}", f"{row.actual_columns} fields where the header has "
                          f"{row.expected_columns}"))
        return "skip"

    try:
        reader = pacsv.open_csv(  # one thread: line numbers are known (and on 2 cores it is faster)
            path,
            read_options=pacsv.ReadOptions(block_size=64 << 20, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=DELIMITERS[kind], invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, include_columns=columns,
                strings_can_be_null=False, quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield Batch(path, kind, first, batch, skipped)
            first += batch.num_rows
    except (pa.ArrowException, OSError) as err:
        raise LogFileError(f"{path}: unreadable {kind.upper()} after line {first + 1}: {err}") from err
