"""Tests for the index folder's format and I/O, called directly (through `SnippetIndex.save`/`load` in
`index_test.py`; kills, full disks and damaged files through the command line in `tests/test_faults.py`)."""

import json
import os

import numpy as np
import pytest

from keras_asr import index_folder

pytestmark = pytest.mark.single_backend

METADATA = {"piece": np.array(["a", "a", "b"]), "strip_x": np.array([25.0, 75.0, 25.0], np.float32)}


def write(directory, kind="sheet", **kwargs):
    embeddings = np.eye(3, 4, dtype=np.float32)
    index_folder.save(directory, embeddings, METADATA, "m@1", kind, **kwargs)
    return embeddings


def test_the_header_lists_the_parts_and_commits_the_write(tmp_path):
    embeddings = write(tmp_path / "x.index", collection={"sources": {"a": "/a.pdf"}})
    header = index_folder.read_header(tmp_path / "x.index")
    assert (header["format"], header["format_version"]) == (index_folder.FORMAT, index_folder.FORMAT_VERSION)
    assert (header["model_id"], header["count"], header["dim"], header["kind"]) == ("m@1", 3, 4, "sheet")
    assert header["columns"] == ["piece", "strip_x"] and header["faiss_index"] is None
    assert sorted(os.listdir(tmp_path / "x.index")) == sorted([index_folder.HEADER_FILE, *header["files"].values()])
    for name, size in header["sizes"].items():
        assert (tmp_path / "x.index" / name).stat().st_size == size
    assert index_folder.read_collection(tmp_path / "x.index") == {"sources": {"a": "/a.pdf"}}
    rows, columns = index_folder.read_rows(tmp_path / "x.index", header)
    np.testing.assert_array_equal(rows, embeddings)
    assert isinstance(rows, np.memmap)
    assert not isinstance(index_folder.read_rows(tmp_path / "x.index", header, mmap=False)[0], np.memmap)
    for name, values in METADATA.items():
        np.testing.assert_array_equal(columns[name], values)

    # A rewrite replaces the parts: the old ones are gone, the header names the new ones.
    write(tmp_path / "x.index")
    again = index_folder.read_header(tmp_path / "x.index")
    assert set(again["files"].values()).isdisjoint(header["files"].values())
    assert sorted(os.listdir(tmp_path / "x.index")) == sorted([index_folder.HEADER_FILE, *again["files"].values()])


def test_check_target_refuses_what_is_not_an_index_of_the_kind(tmp_path):
    assert index_folder.check_target(tmp_path / "new.index", "sheet") is None
    (tmp_path / "empty").mkdir()
    assert index_folder.check_target(tmp_path / "empty", "sheet") is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(index_folder.RefusedOverwriteError, match="is a file"):
        index_folder.check_target(tmp_path / "file", "sheet")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"")
    with pytest.raises(index_folder.RefusedOverwriteError, match="holds no keras-asr index"):
        write(tmp_path / "photos")
    assert index_folder.check_target(tmp_path / "photos", "sheet", overwrite=True) is None
    write(tmp_path / "x.index")
    assert index_folder.check_target(tmp_path / "x.index", "sheet")["count"] == 3
    with pytest.raises(index_folder.RefusedOverwriteError, match="holds an index of scores"):
        index_folder.check_target(tmp_path / "x.index", "audio")


def test_damaged_folders_are_reported_as_such(tmp_path):
    with pytest.raises(index_folder.NotAnIndexError, match="no header.json"):
        index_folder.read_header(tmp_path)
    write(tmp_path / "x.index")
    header = index_folder.read_header(tmp_path / "x.index")
    metadata = tmp_path / "x.index" / header["files"]["metadata"]
    os.truncate(metadata, 100)
    with pytest.raises(index_folder.DamagedIndexError, match=f"{metadata.name} has 100 bytes"):
        index_folder.read_rows(tmp_path / "x.index", header)
    del header["sizes"]  # without the sizes, the truncated file itself is found unreadable
    with pytest.raises(index_folder.DamagedIndexError, match=f"{metadata.name} cannot be read"):
        index_folder.read_rows(tmp_path / "x.index", header)
    (tmp_path / "x.index" / index_folder.HEADER_FILE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(index_folder.NotAnIndexError, match="not the header of a keras-asr index"):
        index_folder.read_header(tmp_path / "x.index")
