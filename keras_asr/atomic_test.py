"""Tests for atomic writes."""

import os

import pytest

from keras_asr import atomic

pytestmark = pytest.mark.single_backend


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with atomic.written_beside(target, suffix=".keras") as temporary:
            assert temporary.endswith(".tmp.keras") and os.path.dirname(temporary) == str(tmp_path)
            with open(temporary, "w") as f:
                f.write("half")
            raise OSError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.keras"]

    with atomic.written_beside(target, suffix=".keras") as temporary:
        with open(temporary, "w") as f:
            f.write("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["model.keras"]
