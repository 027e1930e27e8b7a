"""The application-level evaluation (examples/evaluate_identification.py) on a tiny real corpus: three indexed
test pieces, and two training pieces queried as pieces the index does not hold (the confidence calibration)."""

import importlib.util
import json
import os

import pytest

from tfds_msmd.corpus.testing import make_tiny_corpus

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.path.join(REPO, "pretrained", "varied_bl2_sc.keras")


def _script():
    spec = importlib.util.spec_from_file_location(
        "evaluate_identification", os.path.join(REPO, "examples", "evaluate_identification.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_counts_answers_at_each_threshold():
    script = _script()
    known = [{"confidence": 0.9, "rank": 1}, {"confidence": 0.58, "rank": 1}, {"confidence": 0.45, "rank": 2},
             {"confidence": 0.2, "rank": 1}]
    rows = {r["threshold"]: r for r in script.calibration(known, [0.3, 0.65, 0.52])}
    assert [r for r in rows] == sorted(rows) and len(rows) == len(script.CONFIDENCES)
    assert rows[0.4] == {"threshold": 0.4, "known_right": 0.5, "known_wrong": 0.25, "unknown_answered": 2 / 3}
    assert rows[0.55]["known_right"] == 0.5 and rows[0.55]["known_wrong"] == 0.0
    assert rows[0.6] == {"threshold": 0.6, "known_right": 0.25, "known_wrong": 0.0, "unknown_answered": 1 / 3}
    assert rows[0.8]["unknown_answered"] == 0.0


def test_unknown_split_queries_calibrate_the_answer(tmp_path):
    root = make_tiny_corpus(tmp_path / "corpus", n_pieces=5, max_measures=8, renders=((1.0, "TimGM6mb"),),
                            splits=["train", "train", "test", "test", "test"])
    out = tmp_path / "report.json"
    assert _script().main(["--corpus", str(root), "--model", SHIPPED_MODEL, "--tempo", "1.0",
                           "--soundfont", "TimGM6mb", "--no-open-set", "--noise", "0", "--excerpts", "40",
                           "--unknown-split", "train", "--unknown-pieces", "5", "--out", str(out)]) == 0
    report = json.loads(out.read_text())["reports"][0]
    assert report["pieces"] == 3
    queries = report["tempo"]["1.0"]["queries"]
    assert len(queries) == 3 and all(1 <= q["rank"] <= 3 for q in queries)
    # The shipped model tells these chorales apart: most indexed pieces are ranked first.
    assert sum(q["rank"] == 1 for q in queries) >= 2
    # Both training pieces are queried (fewer exist than asked for), none of them is in the index.
    unknown = report["unknown"]
    assert unknown["split"] == "train" and unknown["queries"] == 2 and len(unknown["confidence"]) == 2
    rows = report["calibration"]
    assert [r["threshold"] for r in rows] == sorted(r["threshold"] for r in rows)
    for looser, stricter in zip(rows, rows[1:]):  # a higher threshold never answers more
        assert stricter["known_right"] <= looser["known_right"]
        assert stricter["known_wrong"] <= looser["known_wrong"]
        assert stricter["unknown_answered"] <= looser["unknown_answered"]
    lowest = rows[0]["threshold"]
    assert rows[0]["unknown_answered"] == sum(c >= lowest for c in unknown["confidence"]) / 2
