"""Where performances come from: the small interface a dataset package gives keras-asr.

keras-asr trains and evaluates on *performance records*: one per recording of a piece, each a mapping (or an
object with these attributes) with

    piece         str, the piece's name
    performance   str, the recording's name
    tempo_ratio   float, its tempo relative to the score (1.0 when unknown)
    soundfont     str, what it was rendered with ("" for a real recording)
    strip         (STRIP_HEIGHT, W[, 1]) uint8, the unrolled score (`keras_asr.sheet.unroll`)
    spectrogram   (BINS, N) float32, the recording's front end (`keras_asr.audio.spectrogram`)
    onset_frames  (k,) int, the onset frame of each aligned note
    notehead_x    (k,) float, the strip column of its notehead

keras-asr never imports a dataset package by name. A package offers its data under the entry point group
`keras_asr.sources` (in its `setup.cfg`), naming an object with:

    register()             imports its TensorFlow Datasets builders (so `tfds.load(name)` finds them)
    is_corpus(root)        whether a folder is a corpus root it reads
    corpus_hint            what such a folder holds, for the error message when none reads one
    read_corpus(root, split)
                           the records of a split ("train", "valid", "test"; None: all) of such a folder

A builder config whose data must be downloaded by hand says so with a true `needs_manual_dir` attribute, so that
keras-asr's "build it first" message adds `--manual_dir`.

This package's own MSMD builder and reader (`tfds_msmd.source`) is one such source; a new data set is a new source,
with no change here.

Example:

```python
records = keras_asr.sources.read_corpus("corpora/varied_heldout", "test")
pools = keras_asr.sources.by_tempo(records, soundfont="SampledPiano-p0-expr")  # {1.0: [...]}
examples = keras_asr.sources.load_tfds("msmd/small", "train")  # numpy TFDS examples
```
"""

import functools
import importlib.metadata
import os

ENTRY_POINT_GROUP = "keras_asr.sources"


class NoSourceError(LookupError):
    """No installed dataset package can read what was asked for."""


@functools.cache
def installed_sources():
    """{name: source} of every installed dataset package (entry point group `keras_asr.sources`)."""
    found = {ep.name: ep.load() for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if not found:
        raise NoSourceError(
            f"No dataset package is installed (none offers the entry point group {ENTRY_POINT_GROUP!r}): install "
            "keras-asr with its MSMD reader, `pip install -e .` in its checkout (scripts/install.sh does it)."
        )
    return found


def register_builders():
    """Registers every installed source's TensorFlow Datasets builders (importing TFDS first)."""
    import tensorflow_datasets  # noqa: F401  (sources register builders only where TFDS is loaded)

    for source in installed_sources().values():
        source.register()


def load_tfds(name, split, data_dir=None, **kwargs):
    """The examples of a split of a TFDS dataset of an installed source, as NumPy (`tfds.as_numpy`).

    Args:
        name: builder and config, e.g. "msmd/small".
        split: "train", "valid", "test", or any TFDS split string.
        data_dir: TFDS data directory.
        **kwargs: passed on to `tfds.load`.
    """
    import tensorflow_datasets as tfds

    register_builders()
    return tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir, **kwargs))


def tfds_builder(name, data_dir=None):
    """The TFDS builder `name` of an installed source (not prepared here), and the module that registers it
    (what `tfds build --imports` needs)."""
    import tensorflow_datasets as tfds

    register_builders()
    builder = tfds.builder(name, data_dir=data_dir)
    return builder, type(builder).__module__.split(".")[0]


def corpus_source(root):
    """The installed source that reads the corpus folder `root`."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"No corpus folder at {root}.")
    for source in installed_sources().values():
        if source.is_corpus(root):
            return source
    hints = "; ".join(source.corpus_hint for source in installed_sources().values())
    raise FileNotFoundError(f"{root} is not a corpus root that an installed dataset package reads ({hints}).")


def read_corpus(root, split=None):
    """The performance records of a split of a corpus folder (None: every piece of its split file)."""
    return list(corpus_source(root).read_corpus(root, split))


def field(record, name):
    """A record's field, whether the record is a mapping (TFDS example) or an object; bytes become str."""
    value = record[name] if isinstance(record, dict) else getattr(record, name)
    return value.decode() if isinstance(value, bytes) else value


def by_tempo(records, soundfont=None):
    """{tempo ratio rounded to 0.01: [record, ...]}, sorted by ratio, of the records rendered with `soundfont`
    (None: all). Table 3 retrieves within each tempo's renders."""
    groups = {}
    for record in records:
        if soundfont is None or field(record, "soundfont") == soundfont:
            groups.setdefault(round(float(field(record, "tempo_ratio")), 2), []).append(record)
    return dict(sorted(groups.items()))
