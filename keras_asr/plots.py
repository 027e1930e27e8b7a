"""Figures of the paper: attention over the spectrogram (Figures 2/3), attention entropy against onset count
(Figure 4), and the validation curve of a training run.

Each function draws into a new matplotlib figure and returns it; save with `fig.savefig(path)`.
"""

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_attention(spectrograms, weights, sheets=None, titles=None):
    """Figures 2/3: each excerpt's spectrogram with its attention weights plotted over time.

    Args:
        spectrograms: (k, 92, C) excerpts.
        weights: (k, C) attention weights (rows sum to 1).
        sheets: optional (k, 80, 100) snippets shown next to the excerpts.
        titles: optional k strings (e.g. the tempo ratio).

    Returns:
        The figure.
    """
    k = len(spectrograms)
    cols = 2 if sheets is not None else 1
    fig, axes = plt.subplots(2 * k, cols, figsize=(4 * cols + 2, 2.6 * k),
                             gridspec_kw={"height_ratios": [3, 1] * k}, squeeze=False)
    for i in range(k):
        spec_ax, w_ax = axes[2 * i, 0], axes[2 * i + 1, 0]
        spec_ax.imshow(spectrograms[i], origin="lower", aspect="auto", cmap="viridis")
        spec_ax.set_ylabel("bin")
        spec_ax.set_xticks([])
        if titles is not None:
            spec_ax.set_title(titles[i], fontsize=9)
        frames = np.arange(len(weights[i]))
        w_ax.bar(frames, weights[i], width=1.0, color="tab:red")
        w_ax.axhline(1.0 / len(weights[i]), color="gray", lw=0.8, ls="--")  # uniform attention
        w_ax.set_xlim(-0.5, len(weights[i]) - 0.5)
        w_ax.set_ylabel("attention")
        w_ax.set_xlabel("frame (20 per second)")
        if sheets is not None:
            axes[2 * i, 1].imshow(sheets[i], cmap="gray", vmin=0, vmax=1)
            axes[2 * i, 1].axis("off")
            axes[2 * i + 1, 1].axis("off")
    fig.tight_layout()
    return fig


def plot_entropy_vs_onsets(entropy, onsets, context=None, title=None):
    """Figure 4: attention entropy against the number of onsets in the excerpt (box per onset count).

    Args:
        entropy: (n,) entropies in nats.
        onsets: (n,) onset counts.
        context: frames C; draws log(C), the entropy of uniform attention.
        title: optional title.

    Returns:
        The figure.
    """
    entropy, onsets = np.asarray(entropy), np.asarray(onsets)
    counts = np.unique(onsets)
    fig, ax = plt.subplots(figsize=(min(12, max(5, 0.25 * len(counts) + 2)), 3.5))
    ax.boxplot([entropy[onsets == c] for c in counts], positions=counts, widths=0.6, showfliers=False,
               manage_ticks=False)
    means = [entropy[onsets == c].mean() for c in counts]
    ax.plot(counts, means, "o-", color="tab:red", ms=3, lw=1, label="mean")
    if context is not None:
        ax.axhline(np.log(context), color="gray", ls="--", lw=0.8, label=f"uniform (log {context})")
    ax.set_xlabel("onsets in the excerpt")
    ax.set_ylabel("attention entropy (nats)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_validation_curves(histories, key="val_mrr", title="Validation MRR (audio -> sheet)"):
    """Validation metric per epoch of one or more runs.

    Args:
        histories: {run name: list of per-epoch log dicts with "epoch" and `key`}.
        key: the metric.
        title: plot title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in histories.items():
        rows = [h for h in history if key in h]
        ax.plot([h["epoch"] for h in rows], [h[key] for h in rows], "o-", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
