"""Retrieval metrics of the paper: ranks of the true item, R@k, MRR and median rank, both directions.

Queries and candidates are paired by index (query i belongs with candidate i); every other candidate is
irrelevant. Similarity is the cosine, so embeddings need not be normalised.

Example:

```python
ranks = keras_asr.metrics.retrieval_ranks(audio_emb, sheet_emb)  # audio -> sheet, 1-based
scores = keras_asr.metrics.retrieval_metrics(ranks)               # {"R@1": ..., "MRR": ..., "MR": ...}
both = keras_asr.metrics.evaluate_retrieval(sheet_emb, audio_emb)
print(keras_asr.metrics.format_table2({"BL2-SC": both}))
```
"""

import numpy as np

from keras_asr.geometry import TEMPO_RATIOS  # the paper's Table 3 (renders of the test pieces at these speeds)

RECALL_AT = (1, 5, 10, 25)
DIRECTIONS = ("audio2sheet", "sheet2audio")


def _normalize(x):
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def retrieval_ranks(queries, candidates, chunk_size=2000):
    """1-based rank of each query's paired candidate by cosine similarity.

    Ties count against the query (a candidate as similar as the true one ranks ahead of it), so a
    collapsed embedding cannot score well.

    Args:
        queries: (n, d) query embeddings.
        candidates: (n, d) candidate embeddings; `candidates[i]` is the true item of `queries[i]`.
        chunk_size: queries per block of the (n, n) similarity matrix (bounds memory).

    Returns:
        int64 (n,) ranks in 1..n.
    """
    q, c = _normalize(queries), _normalize(candidates)
    if q.shape != c.shape:
        raise ValueError(f"queries {q.shape} and candidates {c.shape} must be paired one to one.")
    ranks = np.empty(len(q), np.int64)
    for start in range(0, len(q), chunk_size):
        sim = q[start:start + chunk_size] @ c.T
        true = sim[np.arange(len(sim)), np.arange(start, start + len(sim))]
        # Number of candidates at least as similar as the true one, the true one included.
        ranks[start:start + len(sim)] = (sim >= true[:, None]).sum(axis=1)
    return ranks


def retrieval_metrics(ranks, recall_at=RECALL_AT):
    """Summary of ranks as in the paper's Table 2.

    Args:
        ranks: (n,) 1-based ranks of the true items.
        recall_at: cut-offs k of the recalls.

    Returns:
        dict: `"R@k"` (percent of queries with rank <= k), `"MRR"` (mean of 1 / rank), `"MR"` (median rank)
        and `"n"` (number of queries).
    """
    ranks = np.asarray(ranks)
    out = {f"R@{k}": 100.0 * float(np.mean(ranks <= k)) for k in recall_at}
    out["MRR"] = float(np.mean(1.0 / ranks))
    out["MR"] = float(np.median(ranks))
    out["n"] = int(len(ranks))
    return out


def evaluate_retrieval(sheet_embeddings, audio_embeddings, recall_at=RECALL_AT):
    """Metrics in both directions for paired embeddings.

    Returns:
        {"audio2sheet": metrics, "sheet2audio": metrics} (see `retrieval_metrics`); audio -> sheet is the
        paper's headline direction.
    """
    return {
        "audio2sheet": retrieval_metrics(retrieval_ranks(audio_embeddings, sheet_embeddings), recall_at),
        "sheet2audio": retrieval_metrics(retrieval_ranks(sheet_embeddings, audio_embeddings), recall_at),
    }


def mean_reciprocal_rank(queries, candidates):
    """MRR of paired embeddings in one direction (the early-stopping criterion)."""
    return float(np.mean(1.0 / retrieval_ranks(queries, candidates)))


def format_table2(results, direction="audio2sheet", title=None):
    """The paper's Table 2 layout: one row per model, R@1/5/10/25 (%), MRR and MR.

    Args:
        results: {model name: metrics} or {model name: {direction: metrics}} (the output of
            `evaluate_retrieval`).
        direction: which direction to show when `results` holds both.
        title: optional first line; by default the direction.

    Returns:
        A Markdown table (str).
    """
    lines = [title or f"Table 2 ({direction.replace('2', ' -> ')})", ""]
    lines.append("| Model | R@1 | R@5 | R@10 | R@25 | MRR | MR |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, m in results.items():
        m = m.get(direction, m)
        lines.append(
            f"| {name} | {m['R@1']:.2f} | {m['R@5']:.2f} | {m['R@10']:.2f} | {m['R@25']:.2f} "
            f"| {m['MRR']:.2f} | {m['MR']:g} |"
        )
    return "\n".join(lines)


def format_table3(results, ratios=TEMPO_RATIOS, title="Table 3 (audio -> sheet MRR by tempo ratio)"):
    """The paper's Table 3 layout: one row per model, MRR at each tempo ratio.

    Args:
        results: {model name: {tempo ratio: MRR or metrics dict}}; missing ratios print as "-".
        ratios: the column order.
        title: first line.

    Returns:
        A Markdown table (str).
    """
    lines = [title, ""]
    lines.append("| Model | " + " | ".join(f"{r:g}" for r in ratios) + " |")
    lines.append("|---|" + "---|" * len(ratios))
    for name, by_ratio in results.items():
        cells = []
        for r in ratios:
            v = _lookup_ratio(by_ratio, r)
            if isinstance(v, dict):
                v = v.get("audio2sheet", v)["MRR"]
            cells.append("-" if v is None else f"{v:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _lookup_ratio(by_ratio, ratio):
    for key, value in by_ratio.items():
        if abs(float(key) - ratio) < 1e-3:
            return value
    return None


def print_table2(results, directions=DIRECTIONS):
    """Prints `format_table2` for each direction."""
    for d in directions:
        print(format_table2(results, d))
        print()


def print_table3(results, ratios=TEMPO_RATIOS):
    """Prints `format_table3`."""
    print(format_table3(results, ratios))
