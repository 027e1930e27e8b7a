"""Tests for the reading half of the MSMD layout, on the real tiny corpus in msmd/dummy_data."""

import glob
import os
import shutil

import numpy as np
import pytest

from tfds_msmd import layout

pytestmark = pytest.mark.single_backend

DUMMY_DATA = os.path.join(os.path.dirname(__file__), "msmd", "dummy_data")
PIECE = os.path.join(DUMMY_DATA, "bach__bwv347__chorale")

# A notehead as the real MSMD archive spells it (from MSMD's README).
MUSCIMA_XML = """<?xml version="1.0" encoding="utf-8"?>
<CropObjectList><CropObjects>
<CropObject xml:id="msmd_aug___BachCPE__cpe-bach-rondo__cpe-bach-rondo_ly-P00___0">
  <Id>0</Id>
  <MLClassName>notehead-full</MLClassName>
  <Top>118</Top><Left>598</Left><Width>9</Width><Height>7</Height>
  <Mask>0:0 1:63</Mask>
  <Outlinks>1824</Outlinks>
  <Data>
    <DataItem key="BachCPE__cpe-bach-rondo__cpe-bach-rondo_tempo-1000_ElectricPiano_onset_frame" type="int">255</DataItem>
    <DataItem key="tied" type="int">0</DataItem>
    <DataItem key="BachCPE__cpe-bach-rondo__cpe-bach-rondo_tempo-1000_ElectricPiano_onset_seconds" type="float">12.727274</DataItem>
    <DataItem key="midi_pitch_code" type="int">68</DataItem>
  </Data>
</CropObject>
<CropObject><Id>1</Id><MLClassName>staff</MLClassName><Top>0</Top><Left>0</Left><Width>9</Width><Height>7</Height></CropObject>
</CropObjects></CropObjectList>
"""


def test_read_mung_accepts_the_muscima_spelling(tmp_path):
    path = tmp_path / "01.xml"
    path.write_text(MUSCIMA_XML)
    (head,) = layout.read_mung(path, page=2)
    assert (head.page, head.y, head.x, head.pitch) == (2, 121.5, 602.5, 68)
    assert head.data["BachCPE__cpe-bach-rondo__cpe-bach-rondo_tempo-1000_ElectricPiano_onset_frame"] == 255
    assert head.data["BachCPE__cpe-bach-rondo__cpe-bach-rondo_tempo-1000_ElectricPiano_onset_seconds"] == 12.727274


def test_unrolled_strip_geometry():
    score = layout.read_score(PIECE)
    systems = np.concatenate([np.load(f) for f in sorted(glob.glob(f"{PIECE}/scores/*/coords/systems_*.npy"))])
    assert score.unrolled_from == "pages" and len(score.system_starts) == len(systems)
    assert score.strip.shape[0] == 200 and score.strip.dtype == np.uint8
    # The detected systems span the engraving's boxes to within a pixel or two at each end.
    widths = np.ceil(systems[:, :, 1].max(1)).astype(int) - np.floor(systems[:, :, 1].min(1)).astype(int)
    assert abs(score.strip.shape[1] - widths.sum()) <= 3 * len(systems)
    # Every notehead of the MuNG lands on the strip, on a dark pixel (the reader's x matches the image).
    assert len(score.noteheads) == sum(len(layout.read_mung(f)) for f in glob.glob(f"{PIECE}/scores/*/mung/*.xml"))
    assert 0 <= score.strip_x.min() and score.strip_x.max() < score.strip.shape[1]
    dark = [score.strip[:, int(round(x)) - 1:int(round(x)) + 2].min() < 128 for x in score.strip_x]
    assert np.mean(dark) > 0.95


@pytest.mark.parametrize("piece", sorted(glob.glob(os.path.join(DUMMY_DATA, "*", ""))))
def test_training_strips_are_the_strips_the_application_makes(piece):
    from keras_asr import sheet

    pages = [sheet.load_pages(f)[0] for f in sorted(glob.glob(os.path.join(piece, "scores", "*", "img", "*.png")))]
    application = sheet.unroll(pages)
    training = layout.read_score(piece)
    np.testing.assert_array_equal(training.strip, np.round(application.strip * 255).astype(np.uint8))
    np.testing.assert_array_equal(training.system_starts, application.system_starts)


def test_a_page_the_detector_reads_differently_falls_back_to_the_engraving(tmp_path):
    piece = tmp_path / "bach__bwv347__chorale"
    shutil.copytree(PIECE, piece)
    (systems_file,) = glob.glob(f"{piece}/scores/*/coords/systems_01.npy")
    boxes = np.load(systems_file)
    np.save(systems_file, np.concatenate([boxes, boxes[-1:] + 300]))  # one system more than the page shows
    score = layout.read_score(piece)
    assert score.unrolled_from == "engraving" and len(score.system_starts) == len(boxes) + 1


def test_read_piece_one_notehead_per_onset_frame():
    records = layout.read_piece(PIECE)
    assert [r.performance for r in records] == layout.performance_names(PIECE)
    score = layout.read_score(PIECE)
    for r in records:
        assert r.piece == "bach__bwv347__chorale" and r.composer == "bach"
        assert (r.tempo_ratio, r.soundfont) == layout.parse_performance_name(r.performance)
        assert r.spectrogram.shape[0] == 92 and r.spectrogram.dtype == np.float32
        assert np.all(np.diff(r.onset_frames) > 0) and len(r.onset_frames) == len(r.notehead_x)
        key = f"{r.performance}_onset_frame"
        frames = sorted({n.data[key] for n in score.noteheads})
        np.testing.assert_array_equal(r.onset_frames, frames)
        for frame, x in zip(r.onset_frames, r.notehead_x):  # the leftmost notehead of the onset
            assert x == min(sx for n, sx in zip(score.noteheads, score.strip_x) if n.data[key] == frame)
        assert r.onset_frames.max() < r.spectrogram.shape[1]
    slow, fast = (next(r for r in records if r.tempo_ratio == t) for t in (1.0, 2.0))
    np.testing.assert_allclose(fast.onset_frames, np.ceil(slow.onset_frames / 2), atol=1)


def test_split_and_performance_names():
    assert layout.read_split(DUMMY_DATA) == {"train": ["bach__bwv269__chorale"], "valid": ["bach__bwv347__chorale"],
                                             "test": ["bach__bwv153-1__chorale"]}
    assert layout.parse_performance_name("BachJS__BWV259__bwv-259_tempo-1050_grand-piano-YDP-20160804") == (
        1.05, "grand-piano-YDP-20160804")
    with pytest.raises(layout.LayoutError, match="tempo"):
        layout.parse_performance_name("no_ratio_here")


def test_missing_spectrogram_renders_the_midi(tmp_path):
    piece = tmp_path / "bach__bwv347__chorale"
    shutil.copytree(PIECE, piece)
    perf = piece / "performances" / "bach__bwv347__chorale_tempo-1000_TimGM6mb"
    stored = np.load(next((perf / "features").glob("*_spec.npy")))
    for f in (perf / "features").glob("*_spec.npy"):
        f.unlink()
    with pytest.raises(layout.LayoutError, match="TimGM6mb.sf2"):
        layout.load_spectrogram(perf)
    if shutil.which("fluidsynth") and os.path.isfile("/usr/share/sounds/sf2/TimGM6mb.sf2"):
        rendered = layout.load_spectrogram(perf, soundfont_dir="/usr/share/sounds/sf2")
        assert rendered.shape[0] == 92 and abs(rendered.shape[1] - stored.shape[1]) < 40
        n = min(rendered.shape[1], stored.shape[1])
        assert np.corrcoef(rendered[:, :n].ravel(), stored[:, :n].ravel())[0, 1] > 0.8


def test_missing_files_are_named(tmp_path):
    piece = tmp_path / "bach__bwv347__chorale"
    shutil.copytree(PIECE, piece)
    next((piece / "scores").glob("*/coords/systems_01.npy")).unlink()
    with pytest.raises(layout.LayoutError, match="systems_01.npy"):
        layout.read_piece(piece)
    with pytest.raises(layout.LayoutError, match="split"):
        layout.read_split(tmp_path)
