import pytest

from phoenix.data.checksums import CHECKSUM_FILE, ChecksumError, verify_checksums, write_checksums


def test_checksums_name_the_file_that_changed_went_missing_or_appeared(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "data").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "progress.json").write_text('{"step": 3}')
    with pytest.raises(ChecksumError, match="no checksums"):
        verify_checksums(tmp_path)
    write_checksums(tmp_path)
    verify_checksums(tmp_path)  # intact
    data = bytearray((tmp_path / "params" / "data").read_bytes())
    data[5000] ^= 1  # one bit
    (tmp_path / "params" / "data").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"params/data: does not match its checksum"):
        verify_checksums(tmp_path)
    (tmp_path / "params" / "data").unlink()
    with pytest.raises(ChecksumError, match=r"params/data: is missing"):
        verify_checksums(tmp_path)
    write_checksums(tmp_path)
    (tmp_path / "extra").write_text("x")
    with pytest.raises(ChecksumError, match=r"extra: is not in the checksums"):
        verify_checksums(tmp_path)
    (tmp_path / CHECKSUM_FILE).write_text("{not json")
    with pytest.raises(ChecksumError, match="unreadable checksums"):
        verify_checksums(tmp_path)
