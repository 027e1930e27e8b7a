"""MSMD (Multimodal Sheet Music Dataset) and its offline stand-in, as TFDS: one example per piece x performance.

Configs:

- `msmd_v1_1`: the real MSMD v1.1, read from `--manual_dir` (see `MANUAL_DOWNLOAD_INSTRUCTIONS`).
- `small`, `full`: the offline corpus (music21 corpus scores engraved with verovio, rendered with FluidSynth),
  built on the fly by `tfds_msmd.corpus.build.build_piece`, or read from `--manual_dir` when a corpus built
  with `python -m tfds_msmd.corpus.build` is there (`split.yaml` at its root).

Splits: `train` (all training renders), `valid` (one render per validation piece), `test` (the test pool:
one held-out SoundFont at tempo 1.0) and `test_tempo` (the test pieces at the tempo ratios of the paper's
Table 3, same SoundFont).

Pairs are cut from the examples by `keras_asr.data.PairPool`.

Build (after `pip install -e .`), from any directory:

    tfds build msmd --imports tfds_msmd --config small
    tfds build msmd --imports tfds_msmd --config msmd_v1_1 --manual_dir ~/msmd
    # in parallel with Apache Beam, offline runner:
    tfds build msmd --imports tfds_msmd --config full \\
        --beam_pipeline_options=runner=FnApiRunner,direct_num_workers=2,direct_running_mode=multi_processing
"""

import dataclasses

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from keras_asr.geometry import NUM_BINS
from keras_asr.geometry import TEMPO_RATIOS  # the paper's Table 3
from tfds_msmd import layout

MSMD_ARCHIVE = "msmd_aug_v1-1_no-audio.zip"
MSMD_URL = "https://zenodo.org/record/2597505/files/msmd_aug_v1-1_no-audio.zip"
SPLIT_URL = "https://github.com/CPJKU/msmd/blob/master/msmd/splits/all_split.yaml"

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Config `msmd_v1_1` reads the real MSMD v1.1 from the manual directory (default ~/tensorflow_datasets/downloads/manual,
or --manual_dir):
1. download {MSMD_ARCHIVE} ({MSMD_URL}) and unzip it into the manual directory, so that
   <manual_dir>/msmd_aug_v1-1_no-audio/<piece>/scores/... (or <manual_dir>/<piece>/scores/...) exists;
2. download the official split all_split.yaml ({SPLIT_URL}) into <manual_dir>/ (next to the pieces or the
   msmd_aug_v1-1_no-audio folder).
The archive ships each performance's spectrogram; performances without one are rendered from their MIDI with
FluidSynth and need the SoundFont <name>.sf2 in <manual_dir>/soundfonts/.
Configs `small` and `full` need no download (they build the offline corpus); a corpus built with
`python -m tfds_msmd.corpus.build --out DIR` can be passed as --manual_dir DIR.
"""


class MsmdDataError(SystemExit):
    """Bad or missing input data (manual directory, split file): one line, exit status 1, no traceback.

    A SystemExit because `tfds build` prints a traceback for every other exception; a caller of
    `download_and_prepare` can still catch it (`except SystemExit`), and `keras-asr` reports it as its own error.
    """

    def __init__(self, message):
        super().__init__(f"msmd: error: {message}")


@dataclasses.dataclass
class MsmdConfig(tfds.core.BuilderConfig):
    """Where the pieces come from and which performances make each split.

    Attributes:
        corpus: None for the real MSMD, else the offline corpus config ("small", "full").
        train_soundfonts: SoundFonts of the training renders.
        train_ratios: (min, max) tempo ratios of the training renders.
        valid_performance: (tempo ratio, SoundFont) of the validation render.
        test_performance: (tempo ratio, SoundFont) of the test pool.
        split_file: name of the split file that marks a corpus root in the manual directory.
    """

    corpus: str = None
    train_soundfonts: tuple = ()
    train_ratios: tuple = (0.9, 1.1)
    valid_performance: tuple = (1.0, "")
    test_performance: tuple = (1.0, "")
    split_file: str = "all_split.yaml"

    @property
    def needs_manual_dir(self):
        """The real MSMD is read from `--manual_dir`; offline configs build themselves (keras_asr.sources)."""
        return self.corpus is None


def _offline_config(name, description):
    from tfds_msmd.corpus import build, varied

    settings = varied.SETTINGS.get(name) or dict(
        train_soundfonts=build.TRAIN_SOUNDFONTS,
        train_ratios=(min(build.TRAIN_RATIOS), max(build.TRAIN_RATIOS)),
        valid_performance=(1.0, build.VALID_SOUNDFONT),
        test_performance=build.TEST_PERFORMANCE,
    )
    return MsmdConfig(name=name, description=description, corpus=name, split_file="split.yaml", **settings)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for MSMD-layout audio-sheet music data."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        MsmdConfig(
            name="msmd_v1_1",
            description="MSMD v1.1 (467 Mutopia pieces) from the manual directory, official split.",
            train_soundfonts=("acoustic_piano_imis_1", "ElectricPiano", "YamahaGrandPiano"),
            valid_performance=(1.0, "ElectricPiano"),
            test_performance=(1.0, "grand-piano-YDP-20160804"),
        ),
        _offline_config("small", "Offline corpus, a few short pieces (minutes to build)."),
        _offline_config("full", "Offline corpus, every usable music21 corpus piece (hours to build)."),
        _offline_config("varied", "Offline corpus of many collections, engravers and performance styles."),
        _offline_config("varied_wide", "The varied corpus with training tempo ratios 0.5-2.0."),
        _offline_config("varied_heldout", "The varied corpus' test pieces, engraved and played in held-out ways."),
    ]
    DEFAULT_CONFIG_NAME = "small"

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "piece": tfds.features.Text(),
                "composer": tfds.features.Text(),
                "performance": tfds.features.Text(),
                "soundfont": tfds.features.Text(),
                "tempo_ratio": tfds.features.Scalar(np.float32),
                "strip": tfds.features.Image(shape=(layout.STRIP_HEIGHT, None, 1), dtype=np.uint8),
                "spectrogram": tfds.features.Tensor(shape=(NUM_BINS, None), dtype=np.float32, encoding="zlib"),
                "onset_frames": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "notehead_x": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            }),
            supervised_keys=None,
            homepage="https://github.com/CPJKU/msmd",
            citation=_CITATION,
        )

    _use_beam = False

    def _generate_splits(self, dl_manager, download_config):
        # Beam only when asked for: Beam's default runner wants to download a runner binary.
        self._use_beam = download_config.beam_options is not None or download_config.beam_runner is not None
        return super()._generate_splits(dl_manager, download_config)

    def _split_generators(self, dl_manager):
        root, split, jobs = self._corpus(dl_manager)
        if jobs and not self._use_beam:
            # Without Beam, build the missing pieces up front in a process pool (resumable), then read.
            from tfds_msmd.corpus import build

            build.build_corpus(root, self.builder_config.corpus, jobs=jobs.values(), keep_audio=False)
            split, jobs = layout.read_split(root), {}
        manual = self._manual_dir(dl_manager)
        soundfont_dir = manual and str(manual / "soundfonts")
        return {
            name: self._generate_examples(root, [(p, jobs.get(p)) for p in split[pieces]], keep, soundfont_dir)
            for name, (pieces, keep) in _selections(self.builder_config).items()
            if split[pieces]  # varied_heldout has test pieces only; TFDS rejects a split with no examples
        }

    @staticmethod
    def _manual_dir(dl_manager):
        """The manual directory if one is configured and exists, else None."""
        try:
            manual = epath.Path(dl_manager.manual_dir)
        except AssertionError:  # no manual dir configured
            return None
        return manual if manual.is_dir() else None

    def _corpus(self, dl_manager):
        """(corpus root, {split: piece names}, {piece: build job} for the pieces to build)."""
        config = self.builder_config
        manual = self._manual_dir(dl_manager)
        if manual:
            # The unpacked archive's folder or the manual dir itself; the split file may sit in the manual dir.
            for root in (manual / "msmd_aug_v1-1_no-audio", manual):
                for folder in (root, manual):
                    if root.is_dir() and (folder / config.split_file).is_file():
                        return str(root), _read_split_file(str(root), str(folder / config.split_file)), {}
        if config.corpus is None:
            # The configured folder, also where it is missing or empty (then `dl_manager.manual_dir` raises).
            given = manual or getattr(dl_manager, "_manual_dir", None)
            where = f"in the manual directory {given}" if given else "(no manual directory: give --manual_dir DIR)"
            raise MsmdDataError(
                f"MSMD v1.1 not found {where}: expected {MSMD_ARCHIVE} ({MSMD_URL}) unzipped there and the official "
                f"{config.split_file} beside it ({SPLIT_URL}); the builder's MANUAL_DOWNLOAD_INSTRUCTIONS say more.")
        from tfds_msmd.corpus import build

        jobs = build.plan(config.corpus)
        split = {name: [j.source.piece for j in jobs if j.split == name] for name in ("train", "valid", "test")}
        root = str(epath.Path(dl_manager.download_dir) / f"msmd_offline_{config.corpus}")
        return root, split, {j.source.piece: j for j in jobs}

    def _generate_examples(self, root, pieces, keep, soundfont_dir):
        """Examples of `pieces` ((name, build job or None)) whose performances pass `keep(ratio, soundfont)`."""
        if self._use_beam:
            import apache_beam as beam

            return beam.Create(pieces) | beam.FlatMap(_piece_examples, root, keep, soundfont_dir)
        return (ex for p in pieces for ex in _piece_examples(p, root, keep, soundfont_dir))


def _read_split_file(root, path):
    """The split file at `path` for the pieces under `root`, checked: three lists of pieces that are there."""
    try:
        split = layout.read_split(path)
    except Exception as e:  # noqa: BLE001 - YAML errors, a file that is no mapping: all mean "not a split file"
        raise MsmdDataError(f"{path} is not a split file ({type(e).__name__}: {str(e).splitlines()[0]}): expected "
                            "the keys train, valid and test, each a list of piece folder names.") from None
    if not all(isinstance(piece, str) for pieces in split.values() for piece in pieces) or not any(split.values()):
        raise MsmdDataError(f"{path} is not a split file: expected the keys train, valid and test, each a list "
                            "of piece folder names.")
    missing = [piece for pieces in split.values() for piece in pieces if not (epath.Path(root) / piece).is_dir()]
    if missing:
        raise MsmdDataError(f"{len(missing)} piece(s) listed in {path} have no folder in {root} (e.g. "
                            f"{missing[0]}): is the manual directory complete?")
    return split


@dataclasses.dataclass(frozen=True)
class _Keep:
    """Which performances a split keeps: by SoundFont, and a tempo ratio range or set (picklable for Beam)."""

    soundfonts: tuple
    lo: float = 0.0
    hi: float = float("inf")
    ratios: tuple = ()

    def __call__(self, ratio, soundfont):
        in_range = self.lo - 1e-3 <= ratio <= self.hi + 1e-3
        listed = not self.ratios or any(abs(ratio - r) < 1e-3 for r in self.ratios)
        return soundfont in self.soundfonts and in_range and listed


def _selections(config):
    """{split: (the split-file list it draws pieces from, `_Keep`)}."""
    valid_ratio, valid_sf = config.valid_performance
    test_ratio, test_sf = config.test_performance
    return {
        "train": ("train", _Keep(tuple(config.train_soundfonts), *config.train_ratios)),
        "valid": ("valid", _Keep((valid_sf,), ratios=(valid_ratio,))),
        "test": ("test", _Keep((test_sf,), ratios=(test_ratio,))),
        "test_tempo": ("test", _Keep((test_sf,), ratios=TEMPO_RATIOS)),
    }


def _piece_examples(piece_job, root, keep, soundfont_dir):
    """Builds the piece if it has a job and is not there yet, then yields (key, example) per kept performance."""
    piece, job = piece_job
    piece_dir = epath.Path(root) / piece
    if job is not None and not piece_dir.is_dir():
        from tfds_msmd.corpus import build

        epath.Path(root).mkdir(parents=True, exist_ok=True)
        result = build.build_piece(job, root, keep_audio=False)
        # "failed" with the folder there: another worker built it first (test pieces feed two splits).
        if result.status == "failed" and not piece_dir.is_dir():
            print(f"msmd: skipping {piece}: {result.error}")
            return
    if not piece_dir.is_dir():
        raise FileNotFoundError(f"Piece folder {piece_dir} (listed in the split file) is missing.")
    piece_dir = str(piece_dir)
    names = [n for n in layout.performance_names(piece_dir) if keep(*layout.parse_performance_name(n))]
    for record in layout.read_piece(piece_dir, soundfont_dir, performances=names):
        yield record.performance, {
            "piece": record.piece,
            "composer": record.composer,
            "performance": record.performance,
            "soundfont": record.soundfont,
            "tempo_ratio": np.float32(record.tempo_ratio),
            "strip": record.strip[:, :, None],
            "spectrogram": record.spectrogram.astype(np.float32),
            "onset_frames": record.onset_frames.astype(np.int32),
            "notehead_x": record.notehead_x.astype(np.float32),
        }


_CITATION = """
@inproceedings{balke2019attention,
  title={Learning Soft-Attention Models for Tempo-invariant Audio-Sheet Music Retrieval},
  author={Balke, Stefan and Dorfer, Matthias and Carvalho, Luis and Arzt, Andreas and Widmer, Gerhard},
  booktitle={Proceedings of the 20th International Society for Music Information Retrieval Conference (ISMIR)},
  year={2019}
}
@article{dorfer2018msmd,
  title={Learning Audio-Sheet Music Correspondences for Cross-Modal Retrieval and Piece Identification},
  author={Dorfer, Matthias and Haji{\\v{c}} jr., Jan and Arzt, Andreas and Frostel, Harald and Widmer, Gerhard},
  journal={Transactions of the International Society for Music Information Retrieval},
  volume={1},
  number={1},
  year={2018}
}
"""
