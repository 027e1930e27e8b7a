"""Tests of the retrieval application's logic (`encoding`, `library`, `recordings`, `identification` and the
`retrieval` front door), on real data made here: the opening measures of three Bach chorales reduced to a grand
staff with music21, engraved with verovio (as a PNG page, a PDF and a MusicXML file) and rendered with
FluidSynth and the MuseScore_General SoundFont.

The data and models are shared with `cli_test.py` through the session fixtures below.
"""

import functools
import os

import keras
import numpy as np
import pytest
import soundfile

import keras_asr
from keras_asr import audio
from keras_asr import encoding
from keras_asr import identification
from keras_asr import index as index_lib
from keras_asr import library as library_lib
from keras_asr import pretrained
from keras_asr import recordings
from keras_asr import retrieval
from keras_asr import sheet
from keras_asr import windows

pytestmark = pytest.mark.single_backend

CHORALES = ("bach/bwv269.mxl", "bach/bwv347.mxl", "bach/bwv153.1.mxl")
MEASURES = 8  # 13-16 s of audio, one or two systems each
SOUNDFONT = "/usr/share/sounds/sf3/MuseScore_General.sf3"
# A trained model, where a test needs one that tells music apart (committed in pretrained/).
SHIPPED_MODEL = os.path.join(os.path.dirname(__file__), os.pardir, "pretrained", "varied_bl2_sc.keras")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORIGINAL_PARAMS = os.environ.get("KERAS_ASR_ORIGINAL_PARAMS") or os.path.normpath(
    os.path.join(REPO_ROOT, os.pardir, "shared", "pretrained", pretrained.ORIGINAL_PARAMS_FILE))

needs_original = pytest.mark.skipif(
    not os.path.exists(ORIGINAL_PARAMS),
    reason=f"The original parameter file is not at {ORIGINAL_PARAMS} (it is not shipped with the project: put "
    "shared/pretrained/ beside the repository, or set $KERAS_ASR_ORIGINAL_PARAMS).",
)


@functools.lru_cache(maxsize=None)
def _library(root):
    """Writes the three pieces as a PNG page, a PDF and a MusicXML file, and one wav recording of each."""
    from PIL import Image

    from tfds_msmd.corpus import sources

    os.makedirs(root, exist_ok=True)
    scores, recordings = {}, {}
    for path, kind in zip(CHORALES, ("png", "pdf", "musicxml")):
        name = os.path.basename(path).rsplit(".", 1)[0].replace(".", "-")
        score = sources.load_score(sources.Source(name, path, MEASURES))
        musicxml = score.write("musicxml", os.path.join(root, f"{name}.musicxml"))
        midi = score.write("midi", os.path.join(root, f"{name}.mid"))
        scores[name] = str(musicxml)
        if kind != "musicxml":
            page = Image.fromarray(np.round(sheet.load_pages(musicxml)[0] * 255).astype(np.uint8))
            scores[name] = os.path.join(root, f"{name}.{kind}")
            page.save(scores[name])
        recordings[name] = os.path.join(root, f"{name}.wav")
        soundfile.write(recordings[name], audio.synthesize(midi, SOUNDFONT), audio.SAMPLE_RATE)
    return scores, recordings


@functools.lru_cache(maxsize=None)
def _attention_model(root):
    """An untrained BL2-SC + AT model as a .keras file and as a SavedModel export."""
    os.makedirs(root, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras_asr.build_model(context="SC", attention=True, name="bl2_sc_at")
    path = os.path.join(root, "bl2_sc_at.keras")
    model.save(path)
    keras_asr.export_encoders(model, os.path.join(root, "export"))
    return path, os.path.join(root, "export")


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """({piece: score file}, {piece: wav file}) of the three chorale excerpts."""
    return _library(str(tmp_path_factory.getbasetemp() / "retrieval_library"))


@pytest.fixture(scope="session")
def attention_model(tmp_path_factory):
    """(.keras path, SavedModel export directory) of an untrained model with attention."""
    return _attention_model(str(tmp_path_factory.getbasetemp() / "retrieval_models"))


@pytest.fixture(scope="session")
def original_model(tmp_path_factory):
    """The authors' BL1-SC model converted to a .keras file (skips without the parameter file)."""
    if not os.path.exists(ORIGINAL_PARAMS):
        pytest.skip(needs_original.kwargs["reason"])
    path = tmp_path_factory.getbasetemp() / "retrieval_models" / "bl1_sc_msmd.keras"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        keras_asr.convert_original_params(ORIGINAL_PARAMS).save(path)
    return str(path)


def test_sheet_at_passes_over_the_strip_on_a_dense_grid_and_cuts_snippets_otherwise(library, attention_model):
    from_keras = encoding.load_encoders(model=attention_model[0])
    from_export = encoding.load_encoders(saved_model=attention_model[1])
    strip = sheet.unroll(sheet.load_pages(library[0]["bwv153-1"])).strip
    dense, sparse = (sheet.snippet_centres(strip.shape[1], hop) for hop in (16, 25))
    # 16 px: two passes over the strip are less work than a window each; 25 px: 32 passes would be more.
    assert from_keras.uses_sliding(dense) and not from_keras.uses_sliding(sparse)
    assert not from_export.uses_sliding(dense)  # a SavedModel has only the per-snippet signature
    np.testing.assert_allclose(from_keras.sheet_at(strip, sparse),
                               from_keras.sheet(windows.snippets(strip, sparse)), atol=1e-5)
    np.testing.assert_allclose(from_export.sheet_at(strip, dense),
                               from_export.sheet(windows.snippets(strip, dense)), atol=1e-5)
    embeddings = from_keras.sheet_at(strip, dense)
    assert embeddings.shape == (len(dense), 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_keras_model_and_its_saved_model_export_embed_alike_with_one_model_id(library, attention_model):
    from_keras = encoding.load_encoders(model=attention_model[0])
    from_export = encoding.load_encoders(saved_model=attention_model[1])
    assert from_keras.model_id == from_export.model_id
    assert from_keras.model_id.startswith("keras-asr-c42@")
    assert from_keras.frames == from_export.frames == 42
    assert from_keras.has_attention and not from_export.has_attention

    score = sheet.unroll(sheet.load_pages(library[0]["bwv153-1"]))
    snippets = windows.snippets(score.strip, sheet.snippet_centres(score.width)[:5])
    np.testing.assert_allclose(from_keras.sheet(snippets), from_export.sheet(snippets), atol=1e-5)
    spec = recordings.load_spectrogram(library[1]["bwv269"], 42)
    excerpts = windows.excerpts(spec, np.asarray([0, 40, 80]) + 42 // 2, 42)
    np.testing.assert_allclose(from_keras.audio(excerpts), from_export.audio(excerpts), atol=1e-5)
    weights = from_keras.attention(excerpts)
    assert weights.shape == (3, 42)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_index_scores_records_where_every_snippet_comes_from(library, attention_model, tmp_path):
    encoders = encoding.load_encoders(model=attention_model[0])
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (835, 1181), 255).save(blank)
    lines = []
    paths = list(library[0].values()) + [str(blank)]
    index, sources, skipped = library_lib.index_scores(encoders, paths, hop=50, log=lines.append)

    assert list(skipped) == [str(blank)] and "staff system" in skipped[str(blank)]
    assert sorted(sources) == sorted(library[0]) and len(lines) == 4 and "skipped" in lines[-1]
    for piece, path in library[0].items():
        score = sheet.unroll(sheet.load_pages(path))
        rows = index.metadata["piece"] == piece
        centres = sheet.snippet_centres(score.width, 50)
        np.testing.assert_array_equal(index.metadata["strip_x"][rows], centres)
        page, system, page_x = score.strip_to_page(centres)
        np.testing.assert_array_equal(index.metadata["page"][rows], page)
        np.testing.assert_array_equal(index.metadata["system"][rows], system)
        np.testing.assert_allclose(index.metadata["page_x"][rows], page_x)
        np.testing.assert_allclose(index.embeddings[rows],
                                   encoders.sheet(windows.snippets(score.strip, centres)), atol=1e-5)

    retrieval.save_index(index, tmp_path / "library.index", encoders, sources, kind="sheet", hop=50)
    collection = index_lib.read_collection(tmp_path / "library.index")
    assert collection["model"] == {"model": os.path.abspath(attention_model[0])}
    loaded, _, loaded_encoders = retrieval.load_index(tmp_path / "library.index", kind="sheet")
    assert loaded.model_id == encoders.model_id == loaded_encoders.model_id and len(loaded) == len(index)
    with pytest.raises(index_lib.NotAnIndexError, match="not an index of recordings"):
        retrieval.load_index(tmp_path / "library.index", kind="audio")


def test_excerpts_are_evenly_spaced_and_cover_the_recording():
    np.testing.assert_array_equal(recordings.excerpt_starts(142, 42, 3), [0, 50, 100])
    np.testing.assert_array_equal(recordings.excerpt_starts(43, 42, 100), [0, 1])  # no duplicates
    np.testing.assert_array_equal(recordings.excerpt_starts(42, 42, 5), [0])


@pytest.mark.parametrize(
    "signal, message",
    [
        (np.zeros(audio.SAMPLE_RATE * 5, np.float32), "is silent"),
        (np.random.default_rng(0).normal(0, 1e-5, audio.SAMPLE_RATE * 5).astype(np.float32), "is silent"),
        (0.3 * np.sin(np.arange(audio.SAMPLE_RATE) * 0.1).astype(np.float32), "shorter than one excerpt"),
    ],
    ids=["zeros", "near_silent", "one_second"],
)
def test_recordings_without_music_or_too_short_are_rejected(signal, message, tmp_path):
    path = tmp_path / "take.wav"
    soundfile.write(path, signal, audio.SAMPLE_RATE)
    with pytest.raises(encoding.RetrievalError, match=message):
        recordings.load_spectrogram(path, 42)


def test_missing_and_corrupt_audio_are_rejected(tmp_path):
    with pytest.raises(encoding.RetrievalError, match="not found"):
        recordings.load_spectrogram(tmp_path / "missing.flac", 42)
    (tmp_path / "corrupt.mp3").write_bytes(b"ID3 but no frames " * 100)
    with pytest.raises(encoding.RetrievalError, match="Cannot decode"):
        recordings.load_spectrogram(tmp_path / "corrupt.mp3", 42)


def test_sheet_queries_select_a_snippet_a_system_a_page_or_a_crop(library, tmp_path):
    path = library[0]["bwv347"]  # a PDF of one page, two systems
    score = sheet.unroll(sheet.load_pages(path))
    snippets, positions = library_lib.sheet_queries(path, page=1, system=2, x=300)
    assert positions == [{"page": 1, "system": 2, "x": 300.0}]
    np.testing.assert_allclose(snippets, windows.snippets(score.strip, [score.page_to_strip(0, 1, 300)]))

    _, system_positions = library_lib.sheet_queries(path, page=1, system=2)
    _, page_positions = library_lib.sheet_queries(path, page=1)
    assert {p["system"] for p in system_positions} == {2} and {p["system"] for p in page_positions} == {1, 2}
    assert len(page_positions) == len(sheet.snippet_centres(score.width))
    with pytest.raises(encoding.RetrievalError, match="no staff system at page 2"):
        library_lib.sheet_queries(path, page=2)
    with pytest.raises(encoding.RetrievalError, match="lies outside page 1, system 2"):
        library_lib.sheet_queries(path, page=1, system=2, x=800)

    # A crop of the first system at twice the engraving's scale is brought back to it.
    from PIL import Image

    page = sheet.load_pages(path)[0]
    system = score.systems[0]
    crop = page[int(system.centre) - 100:int(system.centre) + 100, system.left:system.left + 400]
    crop_path = tmp_path / "crop.png"
    Image.fromarray(np.round(crop * 255).astype(np.uint8)).resize((800, 400)).save(crop_path)
    crop_snippets, crop_positions = library_lib.sheet_queries(crop_path, hop=50)  # centres 25, 75, ...
    assert crop_positions == [None] * len(crop_snippets) and 6 <= len(crop_snippets) <= 10
    reference = windows.snippets(score.strip, [175])[0]
    assert np.abs(crop_snippets[3] - reference).mean() < 0.05


def test_the_tempo_search_cuts_a_slow_recording_back_to_the_score_tempo(library, tmp_path):
    # bwv269 rendered at half its tempo: cut as if played twice as fast (rate 2), its excerpts hold the music
    # the model learnt at the written tempo, and the best path scores higher than at rate 1.
    from tfds_msmd.corpus import sources

    encoders = encoding.load_encoders(model=SHIPPED_MODEL)
    sheet_index, _, _ = library_lib.index_scores(encoders, list(library[0].values()))
    slow = sources.load_score(sources.Source("bwv269", CHORALES[0], MEASURES)).augmentOrDiminish(2)
    wav = tmp_path / "bwv269_slow.wav"
    soundfile.write(wav, audio.synthesize(slow.write("midi", tmp_path / "slow.mid"), SOUNDFONT), audio.SAMPLE_RATE)
    spec = recordings.load_spectrogram(wav, encoders.frames)
    plain = identification.identify(sheet_index, encoders, spec, excerpts=50, k=5, rates=(1.0,))
    searched = identification.identify(sheet_index, encoders, spec, excerpts=50, k=5)  # QUERY_RATES
    assert plain["rate"] == 1.0 and searched["rate"] == 2.0
    assert searched["match"]["piece"] == "bwv269"
    # Choosing the rate on 10 excerpts first finds it too, and then matches all 50 at that rate alone.
    probed = identification.identify(sheet_index, encoders, spec, excerpts=50, k=5,
                                     rates=identification.QUERY_RATES, probe=10)
    assert probed["rate"] == 2.0 and probed["pieces"] == searched["pieces"]
    assert searched["pieces"][0]["score"] > plain["pieces"][0]["score"] + 0.1
    # The timeline still gives the recording's own times: excerpt centres, 50 of them over its length.
    times = [entry["time"] for entry in searched["timeline"]]
    assert len(times) == 50 and times == sorted(times) and times[-1] < spec.shape[1] / audio.FPS


def test_the_timeline_waits_on_a_held_note_and_moves_at_onsets(library):
    # Read at the last detected onset, the cursor stays where the sounding note is written until the next note
    # starts; read at each excerpt's centre it creeps on between notes.
    encoders = encoding.load_encoders(model=SHIPPED_MODEL)
    sheet_index, _, _ = library_lib.index_scores(encoders, list(library[0].values()))
    spec = recordings.load_spectrogram(library[1]["bwv347"], encoders.frames)
    moves = {}
    for snap in (True, False):
        result = identification.identify(sheet_index, encoders, spec, excerpts=100, k=5, rates=(1.0,),
                                          snap_onsets=snap)
        assert result["match"]["piece"] == "bwv347"
        last = np.searchsorted(audio.detect_onsets(spec), np.array(result["starts"]) + encoders.frames // 2,
                               side="right")
        x = np.array([entry["x"] for entry in result["timeline"]])
        system = np.array([entry["system"] for entry in result["timeline"]])
        held = (np.diff(last) == 0) & (np.diff(system) == 0)
        assert held.sum() > 40  # 100 excerpts over ~40 notes: most neighbours share a note
        moves[snap] = np.abs(np.diff(x))[held].mean()
    assert moves[True] < 3.0 and moves[True] < moves[False] / 2, moves


def test_identify_and_locate_return_ranked_results_with_positions(library, attention_model):
    encoders = encoding.load_encoders(model=attention_model[0])
    sheet_index, _, _ = library_lib.index_scores(encoders, list(library[0].values()))
    spec = recordings.load_spectrogram(library[1]["bwv269"], encoders.frames)
    result = identification.identify(sheet_index, encoders, spec, excerpts=7, k=4, rates=(1.0,))  # no tempo search
    assert sum(entry["votes"] for entry in result["pieces"]) == 7 * 4
    scores = [entry["score"] for entry in result["pieces"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert set(result["match"]) == {"piece", "confidence", "margin"} and 0 <= result["match"]["confidence"] <= 1
    # The timeline is the best piece's path: one position per excerpt, never going back on the strip.
    timeline = result["timeline"]
    assert [entry["time"] for entry in timeline] == [round((s + 21) / 20, 2) for s in result["starts"]]
    score = sheet.unroll(sheet.load_pages(library[0][result["pieces"][0]["piece"]]))
    strip_x = score.page_to_strip(0, np.array([e["system"] for e in timeline]) - 1, [e["x"] for e in timeline])
    assert np.all(np.diff(strip_x) >= 0) and all(e["page"] == 1 for e in timeline)
    assert len(result["excerpts"]) == 7 and result["excerpts"][-1]["end"] == pytest.approx(spec.shape[1] / 20)
    for excerpt in result["excerpts"]:
        assert excerpt["end"] - excerpt["start"] == pytest.approx(42 / 20)
        assert [h["score"] for h in excerpt["hits"]] == sorted((h["score"] for h in excerpt["hits"]), reverse=True)
        assert set(excerpt["hits"][0]) == {"piece", "page", "system", "x", "score"}
        assert excerpt["hits"][0]["page"] == 1 and excerpt["hits"][0]["system"] >= 1

    audio_index, sources, _ = recordings.index_recordings(encoders, list(library[1].values()), hop=20)
    assert sorted(sources) == sorted(library[1])
    times = audio_index.metadata["time"][audio_index.metadata["recording"] == "bwv269"]
    np.testing.assert_allclose(times, (np.arange(len(times)) * 20 + 21) / 20)
    snippets, positions = library_lib.sheet_queries(library[0]["bwv347"], page=1, system=1)
    located = identification.locate(audio_index, encoders, snippets, positions, k=3)
    assert sum(entry["votes"] for entry in located["recordings"]) == 3 * len(snippets)
    assert located["snippets"][0]["position"] == positions[0] and len(located["snippets"][0]["hits"]) == 3


@needs_original
def test_original_model_identifies_each_recording(library, original_model):
    encoders = encoding.load_encoders(model=original_model)
    index, _, _ = library_lib.index_scores(encoders, list(library[0].values()))
    for piece, recording in library[1].items():
        spec = recordings.load_spectrogram(recording, encoders.frames)
        # k = 5 of ~60 snippets: with SPEC's k = 25 every excerpt would vote for nearly half this tiny index.
        result = identification.identify(index, encoders, spec, excerpts=50, k=5)
        assert result["pieces"][0]["piece"] == piece, result["pieces"]
        assert result["match"]["piece"] == piece, result["match"]
        # The path runs through the whole excerpt: its end lies right of its start on the strip.
        first, last = result["timeline"][0], result["timeline"][-1]
        assert (last["system"], last["x"]) > (first["system"], first["x"])


def test_empty_index_is_an_error(attention_model, tmp_path):
    encoders = encoding.load_encoders(model=attention_model[0])
    retrieval.save_index(index_lib.SnippetIndex(encoders.model_id), tmp_path / "empty.index", encoders)
    with pytest.raises(index_lib.EmptyIndexError, match="empty"):
        retrieval.load_index(tmp_path / "empty.index")


def test_a_constant_signal_is_refused_as_holding_no_sound(tmp_path):
    path = tmp_path / "dc.wav"
    soundfile.write(path, np.full(5 * audio.SAMPLE_RATE, 0.5, np.float32), audio.SAMPLE_RATE)
    with pytest.raises(encoding.RetrievalError, match="no sound between 30 and 6,000 Hz"):
        recordings.load_spectrogram(path, 42)


def test_the_front_door_keeps_the_names_callers_use():
    from keras_asr import plots

    for module, names in ((encoding, ("Encoders", "RetrievalError", "load_encoders")),
                          (library_lib, ("index_scores", "add_score", "sheet_queries")),
                          (recordings, ("load_spectrogram", "excerpt_starts", "index_recordings")),
                          (identification, ("identify", "embed_excerpts", "match_excerpts", "locate", "NO_MATCH_Z",
                                            "SMOOTH_EXCERPTS")),
                          (plots, ("plot_identification", "follow_video"))):
        for name in names:
            assert getattr(retrieval, name) is getattr(module, name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        retrieval.nothing
