"""Snippet-index search: latency, memory and recall against index size, per search method.

Measures `keras_asr.index.SnippetIndex` with each method (numpy brute force, FAISS flat, HNSW, IVF) on random
32-d unit vectors (this measures the index, not music): build time, index memory, the best-of-n latency of one
query and of a batch of 100 queries (k = 25, SPEC's piece-identification vote), and the recall@25 of the
approximate methods against the exact result. Prints a markdown table and writes JSON to benchmarks/results/.

Usage:

```
python benchmarks/index_benchmark.py                      # sizes 1e3 .. 1e6, all methods
python benchmarks/index_benchmark.py --sizes 1000 10000 --methods exact flat
OMP_NUM_THREADS=1 python benchmarks/index_benchmark.py   # one thread for numpy's BLAS and FAISS alike
```

On a shared machine OpenMP threads that wait for a busy core make FAISS single queries erratic; the JSON
records the load average next to the results.
"""

import argparse
import json
import os
import pathlib
import platform
import time

import faiss
import numpy as np

from keras_asr import index as index_lib
from keras_asr import index_backends

K = 25
DIM = 32
BATCH = 100


def unit_vectors(rng, n, dim=DIM):
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def best_seconds(function, repeats):
    """The fastest of `repeats` runs: on a shared machine the slower ones measure the neighbours."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def index_bytes(index, faiss_index):
    if faiss_index is None:
        return index.embeddings.nbytes
    return faiss.serialize_index(faiss_index).nbytes


def measure(method, embeddings, queries, exact_rows):
    index = index_lib.SnippetIndex(model_id="benchmark", method=method)
    index.add(embeddings, piece=np.zeros(len(embeddings), np.int32).astype(str))
    start = time.perf_counter()
    faiss_index = index.prepare()
    build = time.perf_counter() - start
    single = best_seconds(lambda: index.search(queries[0], K), repeats=20)
    batch = best_seconds(lambda: index.search(queries, K), repeats=5)
    _, rows = index.search(queries, K)
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(rows.tolist(), exact_rows.tolist())])
    return {
        "method": method,
        "size": len(embeddings),
        "build_s": build,
        "memory_mb": index_bytes(index, faiss_index) / 2**20,
        "single_query_ms": single * 1e3,
        "batch_100_ms": batch * 1e3,
        "recall_at_25": float(recall),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=list(index_backends.BACKENDS), choices=index_backends.BACKENDS)
    parser.add_argument("--output", default=pathlib.Path(__file__).parent / "results" / "index_benchmark.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    queries = unit_vectors(rng, BATCH)
    results = []
    print("| size | method | build s | memory MB | 1 query ms | 100 queries ms | recall@25 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        embeddings = unit_vectors(rng, size)
        _, exact_rows = index_lib.brute_force_search(embeddings, queries, K)
        for method in args.methods:
            row = measure(method, embeddings, queries, exact_rows)
            results.append(row)
            print(
                f"| {size:,} | {method} | {row['build_s']:.2f} | {row['memory_mb']:.1f} | "
                f"{row['single_query_ms']:.2f} | {row['batch_100_ms']:.1f} | {row['recall_at_25']:.3f} |",
                flush=True,
            )
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average": os.getloadavg(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }
    settings = {
        "k": K,
        "dim": DIM,
        # Each FAISS backend's index_factory string (at the largest size) and search-time parameters.
        "faiss_backends": {name: [factory(max(args.sizes)), parameters]
                           for name, (factory, parameters) in index_backends.FAISS_BACKENDS.items()},
    }
    output.write_text(json.dumps({"machine": machine, "settings": settings, "results": results}, indent=2) + "\n")
    print(f"\nwrote {output}")


if __name__ == "__main__":
    main()
