"""Tests of the `keras-asr` command line, run in-process through `main(argv)` on the real engraved and
synthesized chorale excerpts of `retrieval_test.py`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_asr import audio
from keras_asr import cli
from keras_asr import index as index_lib
from keras_asr import retrieval
from keras_asr.geometry import QUERY_RATES
from keras_asr.retrieval_test import ORIGINAL_PARAMS
from keras_asr.retrieval_test import attention_model  # noqa: F401 (session fixtures shared with this module)
from keras_asr.retrieval_test import library  # noqa: F401
from keras_asr.retrieval_test import needs_original

pytestmark = pytest.mark.single_backend


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `keras-asr ARGV...`."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def sheet_index(library, attention_model, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("cli") / "library.index"
    assert cli.main(["index", "--model", attention_model[0], *library[0].values(), "--out", str(path)]) == 0
    return path


def test_index_reports_progress_and_records_pieces(library, attention_model, capsys, tmp_path):  # noqa: F811
    blank = tmp_path / "blank.png"
    Image.new("L", (835, 1181), 255).save(blank)
    scores = list(library[0].values())
    code, out, err = run(capsys, "index", "--model", attention_model[0], *scores, blank, "--out",
                         tmp_path / "library.index", "--hop", 100)
    assert code == 0
    lines = err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [f"[{k}/4] {path}" for k, path in enumerate(scores + [blank], 1)]
    assert "piece bwv269, 1 page(s), 1 system(s)" in lines[0] and "snippets" in lines[0]
    assert "skipped" in lines[3] and "staff system" in lines[3]
    assert "snippets of 3 piece(s), model keras-asr-c42@" in out and "1 file(s) skipped" in out
    assert "search exact" in out
    collection = index_lib.read_collection(tmp_path / "library.index")
    assert collection["sources"] == {piece: os.path.abspath(path) for piece, path in library[0].items()}
    assert collection["hop"] == 100 and collection["kind"] == "sheet"


def test_index_takes_its_search_backend_and_query_uses_it(library, attention_model, sheet_index, capsys,  # noqa: F811
                                                          tmp_path):
    code, out, _ = run(capsys, "index", "--model", attention_model[0], *library[0].values(), "--out",
                       tmp_path / "hnsw.index", "--backend", "hnsw")
    assert code == 0 and "search hnsw" in out
    header = index_lib.read_header(tmp_path / "hnsw.index")
    assert (header["method"], header["faiss_index"]) == ("hnsw", "hnsw")  # the graph is kept with the rows
    # On a library this small the graph finds what exact search finds: the same answer to the same query.
    answers = []
    for index in (sheet_index, tmp_path / "hnsw.index"):
        code, out, err = run(capsys, "query", "--index", index, library[1]["bwv347"], "--excerpts", 12, "--json")
        assert code == 0, err
        answers.append(json.loads(out)["pieces"])
    assert answers[0] == answers[1]
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "index", "--model", attention_model[0], *library[0].values(), "--out", tmp_path / "x.index",
            "--backend", "annoy")
    assert exit_info.value.code == 2 and "invalid choice: 'annoy'" in capsys.readouterr().err


def test_query_json_lists_ranked_pieces_and_excerpt_locations(library, sheet_index, capsys, tmp_path):  # noqa: F811
    plot = tmp_path / "query.png"
    code, out, err = run(capsys, "query", "--index", sheet_index, library[1]["bwv347"], "--excerpts", 12,
                         "--top", 4, "--json", "--plot", plot)
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"audio", "index", "model_id", "match", "rate", "pieces", "timeline", "excerpts"}
    assert result["rate"] in QUERY_RATES  # the tempo search is on by default
    assert len(result["timeline"]) == 12 and {"time", "page", "system", "x"} <= set(result["timeline"][0])
    assert {entry["piece"] for entry in result["pieces"]} <= set(library[0])
    assert sum(entry["votes"] for entry in result["pieces"]) == 12 * 4
    assert len(result["excerpts"]) == 12
    for excerpt in result["excerpts"]:
        assert set(excerpt) == {"start", "end", "hits"} and len(excerpt["hits"]) == 4
        for hit in excerpt["hits"]:
            assert set(hit) == {"piece", "page", "system", "x", "score"}
            assert hit["page"] == 1 and hit["system"] in (1, 2) and 0 <= hit["x"] <= 835
    assert plot.stat().st_size > 10_000
    assert np.asarray(Image.open(plot)).shape[0] > 400
    assert err.startswith(f"{plot}: the path through {result['pieces'][0]['piece']}, page(s) [1]")


def test_query_timeline_names_the_measures_of_a_score_file(library, attention_model, capsys, tmp_path):  # noqa: F811
    # Only a score file carries measure numbers (the PNG and the PDF of the library do not), so the index holds
    # the MusicXML piece alone: whatever the untrained model matches, the path runs through that piece.
    musicxml = library[0]["bwv153-1"]
    assert musicxml.endswith(".musicxml")
    assert cli.main(["index", "--model", attention_model[0], musicxml, "--out", str(tmp_path / "score.index")]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "query", "--index", tmp_path / "score.index", library[1]["bwv153-1"],
                         "--excerpts", 12, "--json")
    assert code == 0, err
    timeline = json.loads(out)["timeline"]
    assert len(timeline) == 12 and set(timeline[0]) == {"time", "page", "system", "x", "measure"}
    # Every entry names its measure; the path never goes back, so neither do the measures.
    bars = [int(entry["measure"]) for entry in timeline]
    assert bars == sorted(bars) and bars[-1] <= 12


def test_query_video_follows_the_recording_with_its_sound(library, sheet_index, capsys, tmp_path):  # noqa: F811
    video = tmp_path / "follow.mp4"
    recording = library[1]["bwv269"]
    code, _, err = run(capsys, "query", "--index", sheet_index, recording, "--excerpts", 8, "--video", video)
    assert code == 0, err
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration", "-of",
                            "json", video], capture_output=True, text=True, check=True)
    info = json.loads(probe.stdout)
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert float(info["format"]["duration"]) == pytest.approx(soundfile.info(recording).duration, abs=0.3)
    assert f"{video}: " in err and "following" in err
    assert not list(tmp_path.glob(".*partial*"))


def test_query_text_output(library, sheet_index, capsys):  # noqa: F811
    code, out, _ = run(capsys, "query", "--index", sheet_index, library[1]["bwv269"], "--excerpts", 5, "--top", 3)
    lines = out.splitlines()
    assert code == 0 and (lines[0].startswith("Playing: ") or lines[0].startswith("No clear match"))
    assert lines[1].startswith("Tempo: about ") and "tempo search" in lines[1]
    assert lines[2].startswith("Pieces, by their best path through the score (5 excerpts in time order;")
    assert [line.strip()[:3] for line in lines[3:6]] == ["1. ", "2. ", "3. "] and "votes" in lines[3]
    assert lines[6].startswith("Where it") and len(lines) == 7 + 5
    assert lines[-1].strip().endswith(tuple("0123456789")) and "page 1 system" in lines[-1]
    # Without the tempo search there is no tempo line; a rate must be a positive number.
    code, out, _ = run(capsys, "query", "--index", sheet_index, library[1]["bwv269"], "--excerpts", 5, "--top", 3,
                       "--rates", 1)
    assert code == 0 and out.splitlines()[1].startswith("Pieces, by their best path")
    with pytest.raises(SystemExit):
        cli.main(["query", "--index", str(sheet_index), library[1]["bwv269"], "--rates", "0"])
    assert "expected a positive number, got 0" in capsys.readouterr().err


def test_saved_model_queries_an_index_built_from_the_keras_model(library, attention_model, sheet_index,  # noqa: F811
                                                                 capsys):
    args = ("query", "--index", sheet_index, library[1]["bwv153-1"], "--excerpts", 6, "--top", 3, "--json")
    keras_result = json.loads(run(capsys, *args)[1])
    code, out, err = run(capsys, *args, "--saved-model", attention_model[1])
    assert code == 0, err
    saved_result = json.loads(out)
    assert saved_result["model_id"] == keras_result["model_id"]
    best_x = [[e["hits"][0]["x"] for e in result["excerpts"]] for result in (saved_result, keras_result)]
    assert best_x[0] == best_x[1]


def test_index_audio_and_query_sheet(library, attention_model, capsys, tmp_path):  # noqa: F811
    index = tmp_path / "recordings.index"
    code, out, err = run(capsys, "index-audio", "--saved-model", attention_model[1], *library[1].values(),
                         "--out", index, "--hop", 20)
    assert code == 0, err
    assert "recording bwv269, 13.6 s, 12 excerpts" in err and "excerpts of 3 recording(s)" in out

    code, out, err = run(capsys, "query-sheet", "--index", index, library[0]["bwv153-1"], "--page", 1,
                         "--system", 2, "--x", 300, "--top", 5, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sum(entry["votes"] for entry in result["recordings"]) == 5
    [snippet] = result["snippets"]
    assert snippet["position"] == {"page": 1, "system": 2, "x": 300.0}
    for hit in snippet["hits"]:
        assert hit["recording"] in library[1] and 1.0 <= hit["time"] <= 15.6

    code, out, _ = run(capsys, "query-sheet", "--index", index, library[0]["bwv269"], "--page", 1, "--top", 2,
                         "--hop", 50)
    assert code == 0 and out.startswith("Recordings, by votes of 15 snippets x 2 excerpts:")
    assert "page 1 system 1 x 64  ->  " in out

    blank = tmp_path / "blank.png"
    Image.new("L", (300, 200), 255).save(blank)
    expect_error(capsys, "No staff system found", "query-sheet", "--index", index, blank)


@needs_original
def test_convert_then_index_and_query_ranks_the_played_piece_first(library, capsys, tmp_path):  # noqa: F811
    model = tmp_path / "bl1_sc_msmd.keras"
    code, out, err = run(capsys, "convert", ORIGINAL_PARAMS, model)
    assert code == 0 and "BL1-SC" in out, err
    assert run(capsys, "index", "--model", model, *library[0].values(), "--out", tmp_path / "library.index")[0] == 0
    for piece, recording in library[1].items():
        # --top 5 of ~60 snippets: SPEC's 25 would let every excerpt vote for nearly half this tiny index.
        code, out, err = run(capsys, "query", "--index", tmp_path / "library.index", recording, "--top", 5,
                             "--excerpts", 40, "--json")
        assert code == 0, err
        assert json.loads(out)["pieces"][0]["piece"] == piece


# -- errors: a message on stderr and exit status 1, never a traceback ---------------------------------------------


def expect_error(capsys, message, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    # Progress lines may come first; the error is the last line.
    assert err.splitlines()[-1].startswith("keras-asr: error: ") and message in err, err
    assert "Traceback" not in err
    return err


def write_wav(path, signal):
    soundfile.write(path, np.asarray(signal, np.float32), audio.SAMPLE_RATE)
    return path


def test_bad_audio_is_reported(sheet_index, capsys, tmp_path):
    expect_error(capsys, "Audio file not found", "query", "--index", sheet_index, tmp_path / "missing.wav")
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC but truncated" * 10)
    expect_error(capsys, "Cannot decode audio file", "query", "--index", sheet_index, tmp_path / "corrupt.flac")
    zeros = write_wav(tmp_path / "zeros.wav", np.zeros(5 * audio.SAMPLE_RATE))
    expect_error(capsys, "is silent", "query", "--index", sheet_index, zeros)
    hiss = write_wav(tmp_path / "hiss.wav", np.random.default_rng(0).normal(0, 1e-5, 5 * audio.SAMPLE_RATE))
    expect_error(capsys, "is silent", "query", "--index", sheet_index, hiss)
    short = write_wav(tmp_path / "short.wav", 0.3 * np.sin(np.arange(audio.SAMPLE_RATE) * 0.1))
    expect_error(capsys, "shorter than one excerpt of the model (42 frames = 2.10 s)", "query", "--index",
                 sheet_index, short)


def test_scores_without_staff_systems_are_reported(attention_model, capsys, tmp_path):  # noqa: F811
    blank = tmp_path / "blank.png"
    Image.new("L", (835, 1181), 255).save(blank)
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4 but nothing else")
    err = expect_error(capsys, "Nothing could be indexed: all 2 file(s) were skipped", "index", "--model",
                       attention_model[0], blank, corrupt, "--out", tmp_path / "none.index")
    assert "blank.png: skipped: None of the 1 page(s) holds a staff system" in err
    assert "corrupt.pdf: skipped: Failed to load document" in err


def test_index_problems_are_reported(library, attention_model, sheet_index, capsys, tmp_path):  # noqa: F811
    recording = library[1]["bwv269"]
    expect_error(capsys, "is not a keras-asr index", "query", "--index", tmp_path, recording)

    encoders = retrieval.load_encoders(model=attention_model[0])
    retrieval.save_index(index_lib.SnippetIndex(encoders.model_id), tmp_path / "empty.index", encoders)
    expect_error(capsys, "is empty", "query", "--index", tmp_path / "empty.index", recording)

    import keras_asr

    other = tmp_path / "other.keras"
    keras_asr.build_model(context="SC").save(other)
    expect_error(capsys, "embeddings of different models are not comparable", "query", "--index", sheet_index,
                 recording, "--model", other)
    expect_error(capsys, "is not an index of recordings", "query-sheet", "--index", sheet_index,
                 library[0]["bwv269"], "--page", 1)


def test_missing_model_files_are_reported(library, sheet_index, capsys, tmp_path):  # noqa: F811
    expect_error(capsys, "No model file at", "index", "--model", tmp_path / "missing.keras",
                 library[0]["bwv269"], "--out", tmp_path / "x.index")
    expect_error(capsys, "No SavedModel at", "index-audio", "--saved-model", tmp_path, library[1]["bwv269"],
                 "--out", tmp_path / "x.index")
    expect_error(capsys, "No model file at", "query", "--index", sheet_index, library[1]["bwv269"],
                 "--model", tmp_path / "missing.keras")
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    expect_error(capsys, "Cannot load", "index", "--model", tmp_path / "broken.keras", library[0]["bwv269"],
                 "--out", tmp_path / "x.index")
    code, _, err = run(capsys, "convert", tmp_path / "missing.pkl", tmp_path / "out.keras")
    assert code == 1 and "No parameter file at" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["query", "--index", "x", "a.wav", "--top", "0"])
    assert exit_info.value.code == 2 and "expected a positive integer" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["index", "query", "index-audio", "query-sheet", "convert"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith(f"usage: keras-asr {command}")


def test_module_runs_as_the_command():
    proc = subprocess.run([sys.executable, "-m", "keras_asr.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: keras-asr"), proc.stderr
    assert all(command in proc.stdout for command in ("index", "query", "index-audio", "query-sheet", "convert"))
