"""Tests for the msmd TFDS builder.

`dummy_data/` is a real tiny corpus: the first two measures of three Bach chorales, engraved with verovio and
rendered with FluidSynth, made by

    make_tiny_corpus("tfds_msmd/msmd/dummy_data", n_pieces=3, max_measures=2, renders=RENDERS)

(pieces: train bwv269, valid bwv347, test bwv153.1). The slow test rebuilds it from the scores.
"""

import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from tfds_msmd import layout
from tfds_msmd.corpus.testing import make_tiny_corpus
from tfds_msmd.msmd import msmd_dataset_builder

DUMMY_DATA = os.path.join(os.path.dirname(__file__), "dummy_data")
# One render per split role of the offline configs: train (TimGM6mb, FluidR3_GM), valid (FluidR3_GM at 1.0),
# test (MuseScore_General at 1.0) and one more tempo for the tempo-robustness split.
RENDERS = ((1.0, "TimGM6mb"), (1.0, "FluidR3_GM"), (1.0, "MuseScore_General"), (2.0, "MuseScore_General"))
SPLITS = {"train": 2, "valid": 1, "test": 1, "test_tempo": 2}
OVERLAPPING_SPLITS = ["test_tempo"]  # holds the test performance (tempo 1.0) among its renders
# The offline SoundFonts renamed to MSMD's, to read the fixture as the real archive.
MSMD_NAMES = {"TimGM6mb": "YamahaGrandPiano", "FluidR3_GM": "ElectricPiano",
              "MuseScore_General": "grand-piano-YDP-20160804"}


@pytest.mark.single_backend
class MsmdSmallTest(tfds.testing.DatasetBuilderTestCase):
    """The offline `small` config reading a prebuilt corpus from the manual dir."""

    DATASET_CLASS = msmd_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["small"]
    EXAMPLE_DIR = DUMMY_DATA
    SPLITS = SPLITS
    OVERLAPPING_SPLITS = OVERLAPPING_SPLITS
    SKIP_CHECKSUMS = True


def as_msmd_archive(corpus, out):
    """Rewrites an offline corpus the way the real archive spells it: MSMD SoundFont names, `all_split.yaml`,
    muscima `<CropObject>`/`<MLClassName>notehead-full`, no `split.yaml`."""
    root = os.path.join(out, "msmd_aug_v1-1_no-audio")
    shutil.copytree(corpus, root)
    os.remove(os.path.join(root, "split.yaml"))
    shutil.copy(os.path.join(corpus, "split.yaml"), os.path.join(out, "all_split.yaml"))
    pattern = re.compile("|".join(f"_{k}" for k in MSMD_NAMES))

    def rename(s):
        return pattern.sub(lambda m: "_" + MSMD_NAMES[m.group(0)[1:]], s)

    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            if rename(d) != d:
                os.rename(os.path.join(dirpath, d), os.path.join(dirpath, rename(d)))
        for f in filenames:
            if f.endswith(".xml"):
                path = os.path.join(dirpath, f)
                tree = ET.parse(path)
                for node in tree.getroot().iter("Node"):
                    node.tag = "CropObject"
                    node.find("ClassName").tag = "MLClassName"
                    node.find("MLClassName").text = "notehead-full"
                    for item in node.iterfind("Data/DataItem"):
                        item.set("key", rename(item.get("key")))
                tree.write(path)
    return out


@pytest.mark.single_backend
class MsmdV11Test(tfds.testing.DatasetBuilderTestCase):
    """The `msmd_v1_1` config reading the fixture spelled as the real MSMD archive."""

    DATASET_CLASS = msmd_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["msmd_v1_1"]
    SPLITS = SPLITS
    OVERLAPPING_SPLITS = OVERLAPPING_SPLITS
    SKIP_CHECKSUMS = True

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.mkdtemp()
        as_msmd_archive(DUMMY_DATA, cls._tmp)
        super().setUpClass()

    @tfds.core.utils.classproperty
    @classmethod
    def dummy_data(cls):  # the base class memoizes its own, shared by all subclasses
        return epath.Path(cls._tmp)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls._tmp, ignore_errors=True)


@pytest.mark.single_backend
def test_missing_manual_dir_says_what_to_download(tmp_path):
    builder = msmd_dataset_builder.Builder(config="msmd_v1_1", data_dir=str(tmp_path / "data"))
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "empty"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(msmd_dataset_builder.MsmdDataError, match="msmd_aug_v1-1_no-audio.zip.*zenodo") as error:
        builder.download_and_prepare(download_config=config)
    assert "\n" not in str(error.value) and str(tmp_path / "empty") in str(error.value)


@pytest.mark.single_backend
@pytest.mark.parametrize("content, message", [
    ("train: [\n  - a\n valid: {", "is not a split file \\(.*Error"),  # truncated YAML
    ("just some words", "is not a split file .*expected the keys"),
    ("train: [bach__bwv269__chorale, not_here]\nvalid: []\ntest: []\n", "1 piece\\(s\\) listed in .* not_here"),
])
def test_bad_split_file_is_one_line_naming_it(content, message, tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(os.path.join(DUMMY_DATA, "bach__bwv269__chorale"), manual / "bach__bwv269__chorale")
    (manual / "all_split.yaml").write_text(content)
    builder = msmd_dataset_builder.Builder(config="msmd_v1_1", data_dir=str(tmp_path / "data"))
    with pytest.raises(msmd_dataset_builder.MsmdDataError, match=message) as error:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    assert "\n" not in str(error.value) and "all_split.yaml" in str(error.value)


@pytest.mark.slow
@pytest.mark.single_backend
def test_dummy_data_is_rebuilt_from_scores(tmp_path):
    make_tiny_corpus(tmp_path, n_pieces=3, max_measures=2, renders=RENDERS)
    assert layout.read_split(str(tmp_path)) == layout.read_split(DUMMY_DATA)
    for piece in os.listdir(tmp_path):
        if not os.path.isdir(tmp_path / piece) or piece.startswith("."):
            continue
        fresh = layout.read_piece(tmp_path / piece)
        stored = layout.read_piece(os.path.join(DUMMY_DATA, piece))
        assert [r.performance for r in fresh] == [r.performance for r in stored]
        for a, b in zip(fresh, stored):
            np.testing.assert_array_equal(a.onset_frames, b.onset_frames)
            np.testing.assert_allclose(a.notehead_x, b.notehead_x, atol=1.0)
            assert a.spectrogram.shape == b.spectrogram.shape


@pytest.mark.slow
@pytest.mark.single_backend
def test_beam_build(tmp_path):
    """The offline corpus through Beam's offline runner, as `tfds build --beam_pipeline_options=...` does."""
    from apache_beam.options.pipeline_options import PipelineOptions

    builder = msmd_dataset_builder.Builder(config="small", data_dir=str(tmp_path))
    config = tfds.download.DownloadConfig(
        manual_dir=DUMMY_DATA, beam_options=PipelineOptions(["--runner=BundleBasedDirectRunner"]))
    builder.download_and_prepare(download_config=config)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == SPLITS
