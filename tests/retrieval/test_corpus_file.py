import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phoenix.retrieval.corpus_file import CorpusFileError, read_corpus


def write(path, **columns):
    pq.write_table(pa.table(columns), path)
    return path


def test_reads_ids_and_optional_times(tmp_path):
    with_times = write(tmp_path / "a.parquet", post_id=[3, 4], author_id=[1, 2], created_s=[10, 20])
    posts, authors, created = read_corpus(with_times)
    assert posts.tolist() == [3, 4] and authors.tolist() == [1, 2] and created.tolist() == [10, 20]
    assert read_corpus(write(tmp_path / "b.parquet", post_id=[3], author_id=[1]))[2] is None


def test_bad_corpus_files_name_the_file_and_column(tmp_path):
    cases = {
        "empty.parquet": ({"post_id": pa.array([], pa.int64()), "author_id": pa.array([], pa.int64())},
                          "empty.parquet: the corpus is empty"),
        "nocol.parquet": ({"post_id": [1]}, "nocol.parquet: missing column\\(s\\) author_id"),
        "float.parquet": ({"post_id": [1.5], "author_id": [1]}, "column post_id must hold integers"),
        "null.parquet": ({"post_id": [1, None], "author_id": [1, 2]}, "column post_id has 1 null"),
        "zero.parquet": ({"post_id": [1, 0], "author_id": [1, 2]}, "column post_id row 1: ids must be positive"),
    }
    for name, (columns, message) in cases.items():
        with pytest.raises(CorpusFileError, match=message):
            read_corpus(write(tmp_path / name, **columns))
    (tmp_path / "junk.parquet").write_bytes(np.arange(10).tobytes())
    with pytest.raises(CorpusFileError, match="junk.parquet: unreadable or corrupt Parquet"):
        read_corpus(tmp_path / "junk.parquet")
    with pytest.raises(CorpusFileError, match="gone.parquet: corpus file not found"):
        read_corpus(tmp_path / "gone.parquet")
