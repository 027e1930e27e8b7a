"""Figures 2/3 (attention over the spectrogram of the same test excerpts at different tempi) and Figure 4
(attention entropy against the number of onsets in the excerpt, over the test set) for an attention model, and
whether the attention follows the tempo (its mean profile and effective width over each tempo render).

    KERAS_BACKEND=tensorflow python examples/plot_attention.py --model outputs/bl2_lc_at/model.keras \
        --dataset msmd/small --out outputs/figures
"""

import argparse
import os

import numpy as np

from keras_asr import evaluation
from keras_asr import geometry
from keras_asr import plots
from keras_asr.data import PairPool
from keras_asr.saving import load_model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help=".keras file of a model with attention")
    p.add_argument("--dataset", default="msmd/small")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    p.add_argument("--excerpts", type=int, default=3, help="test excerpts in Figures 2/3")
    p.add_argument("--tempo-excerpts", type=int, default=2000, help="excerpts per tempo render for the tempo profile")
    p.add_argument("--out", default="outputs/figures")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    model = load_model(a.model)
    if not model.attention:
        raise SystemExit(f"{a.model} has no attention pathway.")

    # Figures 2/3: the same noteheads (equal strip x) in every tempo render of the test piece(s).
    tempo = evaluation.tempo_pools(a.dataset, data_dir=a.data_dir)
    ref = tempo[min(tempo, key=lambda r: abs(r - 1.0))]
    picks = np.linspace(0, len(ref) - 1, a.excerpts + 2).astype(int)[1:-1]
    for j, i in enumerate(picks):
        specs, sheets, weights, titles = [], [], [], []
        for ratio, pool in tempo.items():
            same = np.flatnonzero((pool.example_strip[pool.pair_example] == ref.example_strip[ref.pair_example[i]])
                                  & (np.abs(pool.pair_x - ref.pair_x[i]) < 0.5))
            if not len(same):
                continue
            pair = pool.batch(same[:1], model.frames)
            w = np.asarray(model.audio_tower.attention_model.predict(pair["spectrogram"], verbose=0))[0]
            specs.append(pair["spectrogram"][0])
            sheets.append(pair["sheet"][0])
            weights.append(w)
            titles.append(f"tempo x{ratio:g}: entropy {evaluation.attention_entropy(w[None])[0]:.2f} nats")
        fig = plots.plot_attention(np.array(specs), np.array(weights), np.array(sheets), titles)
        path = os.path.join(a.out, f"attention_excerpt{j + 1}.png")
        fig.savefig(path, dpi=110)
        print("wrote", path)

    # How long a snippet's music lasts at each tempo: what the attention would have to span.
    print("tempo  snippet's music in frames: 5th / 25th / 50th / 75th / 95th percentile")
    for ratio, pool in sorted(tempo.items()):
        print(f"x{ratio:<5g} " + " / ".join(f"{v:.0f}" for v in np.percentile(evaluation.snippet_spans(pool),
                                                                             [5, 25, 50, 75, 95])))
    # Does the attention follow the tempo? The same measures over each tempo render of the test pieces.
    by_tempo = evaluation.attention_by_tempo(model, tempo, n=a.tempo_excerpts)
    centre_s = next(iter(by_tempo.values()))["centre"] / geometry.FPS
    print(f"tempo  excerpts  entropy (nats)  effective width (frames)  weight in the central {centre_s:.1f} s")
    for ratio, r in by_tempo.items():
        print(f"x{ratio:<5g} {r['n']:>8}  {r['entropy']:>14.3f}  {r['width']:>24.1f}  {r['centre_share']:>27.1%}")
    fig = plots.plot_attention_by_tempo(by_tempo, f"mean attention, {a.tempo_excerpts} test excerpts per tempo")
    path = os.path.join(a.out, "attention_by_tempo.png")
    fig.savefig(path, dpi=110)
    print("wrote", path)

    # Figure 4 over the fixed test set.
    test = PairPool.from_tfds("test", name=a.dataset, data_dir=a.data_dir)
    entropy, onsets, _ = evaluation.attention_statistics(model, test)
    r = np.corrcoef(onsets, entropy)[0, 1]
    fig = plots.plot_entropy_vs_onsets(entropy, onsets, model.frames,
                                       f"{len(entropy)} test excerpts, Pearson r = {r:.2f}")
    path = os.path.join(a.out, "entropy_vs_onsets.png")
    fig.savefig(path, dpi=110)
    print(f"wrote {path}; n = {len(entropy)}, Pearson r(onsets, entropy) = {r:.3f}, entropy range "
          f"{entropy.min():.3f}..{entropy.max():.3f} nats (uniform: {np.log(model.frames):.3f})")


if __name__ == "__main__":
    main()
