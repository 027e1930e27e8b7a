"""Figures: those of the paper (attention over the spectrogram, Figures 2/3; attention entropy against onset
count, Figure 4; the validation curve of a training run), and score following, the path of
`identification.identify` drawn over the piece's pages, as a figure or as a video with the recording's sound.

The `plot_*` functions draw into a new matplotlib figure and return it; save with `fig.savefig(path)`.
`plot_identification` and `follow_video` write the query's figure and video to files, as `keras-asr query
--plot/--video` does.

Example:

```python
result = identification.identify(index, encoders, spec)
plot_identification(result, collection["sources"], "take1.png")
follow_video(result, collection["sources"], "take1.flac", "take1.mp4")
```
"""

import itertools
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display on training machines

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_asr import audio as audio_lib  # noqa: E402
from keras_asr import geometry  # noqa: E402
from keras_asr import pages as pages_lib  # noqa: E402
from keras_asr import staves  # noqa: E402
from keras_asr.encoding import RetrievalError  # noqa: E402


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


def plot_attention_by_tempo(by_tempo, title=None):
    """The mean attention over the excerpts of each tempo render, one curve per ratio.

    Args:
        by_tempo: `evaluation.attention_by_tempo`'s result.
        title: optional title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for ratio, r in sorted(by_tempo.items()):
        ax.plot(r["profile"], lw=1.2, label=f"x{ratio:g}: {r['width']:.0f} frames, {r['centre_share']:.0%} central")
    first = next(iter(by_tempo.values()))
    context, centre_s = len(first["profile"]), first["centre"] / geometry.FPS
    ax.axhline(1 / context, color="gray", ls="--", lw=0.8, label="uniform")
    ax.set_xlim(0, context - 1)
    ax.set_xlabel("frame of the excerpt (20 per second)")
    ax.set_ylabel("mean attention")
    ax.legend(fontsize=7, title=f"tempo: effective width, weight in the central {centre_s:.1f} s", title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_validation_curves(histories, key="val_mrr", title="Validation MRR (audio -> sheet)", changes=None):
    """Validation metric per epoch of one or more runs.

    Args:
        histories: {run name: list of per-epoch log dicts with "epoch" and `key`}.
        key: the metric.
        title: plot title.
        changes: {run name: [(epoch, label)]}: the run's validation set changed after `epoch` (a checkpoint's
            `validation_changes`); the curve is broken there, dashed after it, and `label` names the new set.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, history in histories.items():
        rows = [h for h in history if key in h]
        cuts = sorted((changes or {}).get(name, []))
        bounds = [0] + [e for e, _ in cuts] + [max([h["epoch"] for h in rows], default=0)]
        colour = None
        for i in range(len(bounds) - 1):
            part = [h for h in rows if bounds[i] < h["epoch"] <= bounds[i + 1]]
            if not part:
                continue
            label = name if i == 0 else f"{name}, {cuts[i - 1][1]}"
            (line,) = ax.plot([h["epoch"] for h in part], [h[key] for h in part], "o-" if i == 0 else "s--", ms=3,
                              label=label, color=colour)
            colour = line.get_color()
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_score_following(result, pages, piece, systems_of_page, max_pages=2):
    """The path of `keras_asr.identification.identify` drawn over the pages it visits, and the pieces' scores.

    Args:
        result: what `identify` returns.
        pages: the grayscale pages of the best piece (white = 1).
        piece: its name (for the title).
        systems_of_page: page index -> the page's detected `StaffSystem`s (to place each point vertically).
        max_pages: draw at most this many pages, the ones most of the path lies on.

    Returns:
        The figure: the inked part of each page with the timeline's positions coloured by time and joined in
        order within a system, and below, a bar chart of the best pieces' path scores.
    """
    timeline = result["timeline"]
    visited = [entry["page"] for entry in timeline]
    shown = sorted(sorted(set(visited), key=lambda p: -visited.count(p))[:max_pages])
    crops = []
    for page in shown:
        systems = systems_of_page(page - 1)
        # The inked rows only: a short piece leaves most of an A4 page white.
        top = max(0, int(min(s.top for s in systems)) - 40)
        bottom = min(pages[page - 1].shape[0], int(max(s.bottom for s in systems)) + 40)
        crops.append((page, systems, top, bottom))
    top_pieces = result["pieces"][:6]
    heights = [(b - t) / pages[p - 1].shape[1] * 7.5 for p, _, t, b in crops]
    fig = plt.figure(figsize=(7.5, sum(heights) + 0.4 * len(top_pieces) + 1.8), layout="constrained")
    grid = fig.add_gridspec(len(crops) + 1, 1, height_ratios=heights + [0.4 * len(top_pieces) + 0.6])
    times = np.array([entry["time"] for entry in timeline])
    norm = matplotlib.colors.Normalize(times.min(), max(times.max(), times.min() + 1e-3))
    cmap = plt.get_cmap("viridis")
    page_axes = []
    for row, (page, systems, top, bottom) in enumerate(crops):
        ax = fig.add_subplot(grid[row])
        image = pages[page - 1]
        ax.imshow(image[top:bottom], cmap="gray", vmin=0, vmax=1, extent=(0, image.shape[1], bottom, top))
        on_page = [(k, e) for k, e in enumerate(timeline) if e["page"] == page]
        for number in sorted({e["system"] for _, e in on_page}):
            run = [(k, e) for k, e in on_page if e["system"] == number]
            centre = systems[min(number - 1, len(systems) - 1)].centre
            xs = [e["x"] for _, e in run]
            ax.plot(xs, [centre] * len(xs), color="tab:red", lw=1, alpha=0.6)
            ax.scatter(xs, [centre] * len(xs), c=[times[k] for k, _ in run], cmap=cmap, norm=norm, s=16, zorder=3)
        ax.set_title(f"{piece}, page {page}: where each excerpt of the recording sounds", fontsize=9)
        ax.axis("off")
        page_axes.append(ax)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, cmap), ax=page_axes, orientation="horizontal", fraction=0.04,
                 pad=0.02, aspect=50, label="time in the recording (s)")
    bar_ax = fig.add_subplot(grid[-1])
    found = result["match"]["piece"] is not None
    positions = np.arange(len(top_pieces))[::-1]
    bar_ax.barh(positions, [p["score"] for p in top_pieces],
                color=["tab:green" if k == 0 and found else "tab:gray" for k in range(len(top_pieces))])
    bar_ax.set_yticks(positions, [p["piece"] for p in top_pieces], fontsize=8)
    bar_ax.set_xlabel("path score (mean hub-normalised similarity along the best path)", fontsize=8)
    verdict = (f"match, confidence {result['match']['confidence']:.2f}" if found
               else f"no clear match (confidence {result['match']['confidence']:.2f})")
    bar_ax.set_title(verdict, fontsize=9)
    return fig


def score_following_frames(result, pages, systems_of_page, duration, fps=10, width=640):
    """Frames of a score-following video: the page of the moment with a cursor where the music is.

    Between two excerpts of `identify`'s timeline the cursor moves linearly along the system (it jumps at a
    system or page change); before the first and after the last it waits. A bar along the top shows the time.
    Frames are drawn with NumPy on the pages scaled once to `width`, so a minute of video takes seconds.

    Args:
        result: what `keras_asr.identification.identify` returns.
        pages: the best piece's grayscale pages (white = 1).
        systems_of_page: page index -> the page's detected `StaffSystem`s.
        duration: seconds of video (the recording's length).
        fps: frames per second.
        width: frame width in px (even, as video encoders want).

    Yields:
        uint8 (height, width, 3) RGB frames, `ceil(duration * fps)` of them.
    """
    import skimage.transform

    timeline = result["timeline"]
    times = np.array([e["time"] for e in timeline])
    scale = width / pages[0].shape[1]
    height = int(round(pages[0].shape[0] * scale / 2)) * 2
    scaled = {}
    systems = {}
    for page in sorted({e["page"] for e in timeline}):
        gray = skimage.transform.resize(pages[page - 1], (height, width), order=1, anti_aliasing=True)
        scaled[page] = np.repeat((np.clip(gray, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
        systems[page] = systems_of_page(page - 1)
    for frame in range(max(1, int(np.ceil(duration * fps)))):
        t = frame / fps
        k = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(timeline) - 1))
        entry, x = timeline[k], timeline[k]["x"]
        following = timeline[min(k + 1, len(timeline) - 1)]
        if t >= times[0] and k + 1 < len(timeline) and \
                (following["page"], following["system"]) == (entry["page"], entry["system"]):
            x += (following["x"] - x) * (t - times[k]) / max(times[k + 1] - times[k], 1e-6)
        image = scaled[entry["page"]].copy()
        box = systems[entry["page"]][min(entry["system"] - 1, len(systems[entry["page"]]) - 1)]
        top, bottom = int(box.top * scale) - 6, int(box.bottom * scale) + 6
        column = int(np.clip(x * scale, 2, width - 3))
        cursor = image[max(top, 0):bottom, column - 2:column + 3]
        cursor[...] = (0.35 * cursor + 0.65 * np.array([214, 39, 40])).astype(np.uint8)
        image[:6, :int(width * min(t / max(duration, 1e-6), 1.0))] = (31, 119, 180)
        yield image


def plot_identification(result, sources, path):
    """Draws the timeline of `identify` over the best piece's pages (`plot_score_following`).

    Raises:
        RetrievalError: the best piece's score file is gone.
    """
    piece = result["pieces"][0]["piece"]
    source = sources.get(piece)
    if not source or not os.path.isfile(source):
        raise RetrievalError(f"Cannot plot: the score file of {piece!r} ({source}) is not there any more.")
    pages = pages_lib.load_pages(source)
    fig = plot_score_following(result, pages, piece, lambda page: staves.detect_systems(pages[page]))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {"piece": piece, "pages": sorted({entry["page"] for entry in result["timeline"]})}


def follow_video(result, sources, audio_path, path, fps=10):
    """Writes a score-following video of a recording with its sound (frames: `score_following_frames`).

    Raises:
        RetrievalError: no ffmpeg on the PATH, the best piece's score file is gone, or ffmpeg failed.
    """
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RetrievalError("Cannot write a video: ffmpeg is not installed (Debian: apt-get install ffmpeg).")
    piece = result["pieces"][0]["piece"]
    source = sources.get(piece)
    if not source or not os.path.isfile(source):
        raise RetrievalError(f"Cannot draw the video: the score file of {piece!r} ({source}) is not there any more.")
    pages = pages_lib.load_pages(source)
    duration = len(audio_lib.load_audio(audio_path)) / audio_lib.SAMPLE_RATE
    frames = score_following_frames(result, pages, lambda page: staves.detect_systems(pages[page]), duration, fps)
    first = next(frames)
    # Written beside the target, then renamed: an interrupted run leaves no half video.
    partial = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.partial.mp4")
    command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{first.shape[1]}x{first.shape[0]}", "-r", str(fps), "-i", "-", "-i", os.fspath(audio_path),
               "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
               partial]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in itertools.chain([first], frames):
            process.stdin.write(frame.tobytes())
        process.stdin.close()
        error = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise RetrievalError(f"ffmpeg could not write {path}: {error.splitlines()[-1:] or 'no message'}")
        os.replace(partial, path)
    finally:
        if process.poll() is None:
            process.kill()
        if os.path.exists(partial):
            os.remove(partial)
    return {"piece": piece, "seconds": duration}
