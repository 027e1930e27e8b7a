"""The geometry of a pair, in one place: the audio front end, the score's strip and snippets, the contexts.

Training, evaluation, indexing and querying all read these numbers from here (SPEC: the paper and MSMD):

- audio: 22,050 Hz, frames of 2,048 samples at 20 per second, a log-frequency spectrogram of 92 bands
  (`audio.spectrogram`); an excerpt is `CONTEXTS[...]` frames centred on an onset frame;
- sheet: pages scaled to 835 px wide, each staff system cut into a strip of 200 rows centred on it and the
  strips concatenated (`sheet.unroll`); a snippet is a 160 x 200 window of the strip centred on a notehead's
  column, halved to 80 x 100 (`windows.snippets`); an index places one every 16 px
  (SPEC's 50 px measured worse at every tempo);
- tempo: the ratios of the paper's Table 3, and the rates a query's tempo search reads its excerpts at.

A saved model records `FRONT_END` (`RetrievalModel.get_config`), so that loading one trained on another
front end fails with a message instead of answering from spectrograms it never saw.
"""

SAMPLE_RATE = 22050
FRAME_SIZE = 2048
FPS = 20
NUM_BINS = 92

CONTEXTS = {"SC": 42, "MC": 84, "LC": 168}  # excerpt frames: 2.1, 4.2 and 8.4 s

PAGE_WIDTH = 835
STRIP_HEIGHT = 200
SNIPPET_WINDOW = (160, 200)  # rows x columns cut from the strip
SNIPPET_SHAPE = (SNIPPET_WINDOW[0] // 2, SNIPPET_WINDOW[1] // 2)  # what the sheet encoder sees
# px between snippet centres in a piece-identification database: 25 beat 50 at every tempo; 16 is two passes of
# the sliding sheet encoder (`models.sliding_sheet_encoder`), 4x faster to index than 25 snippet by snippet and as good.
SNIPPET_HOP = 16

TEMPO_RATIOS = (0.5, 0.66, 1.0, 1.33, 2.0)  # the paper's Table 3
# A query's tempo search: its excerpts are also cut as if the recording played this many times as fast.
QUERY_RATES = (0.5, 0.71, 1.0, 1.41, 2.0)

# What a model's audio input means; recorded in saved models and checked when they load.
FRONT_END = {"sample_rate": SAMPLE_RATE, "frame_size": FRAME_SIZE, "fps": FPS, "bins": NUM_BINS,
             "snippet_window": list(SNIPPET_WINDOW), "strip_height": STRIP_HEIGHT}
