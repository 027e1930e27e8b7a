"""Tests for the snippet index, on embeddings of real engraved snippets.

Without a trained model, a PCA of the snippets' pixels stands in for the sheet encoder: like a learned
embedding it puts similar-looking music close together, which gives the index real-like structure (clusters,
near-duplicates, near-ties) rather than uniform noise.
"""

import music21
import numpy as np
import pytest

from keras_asr import index as index_lib
from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr import windows

pytestmark = pytest.mark.single_backend

CORPUS = music21.common.getCorpusFilePath()
# Piano pieces, one page each (the first): engraving dominates the test's time.
PIECES = {
    "chopin_op6_2": CORPUS / "chopin" / "mazurka06-2.krn",
    "clara_schumann_op1_1": CORPUS / "schumann_clara" / "polonaise_op1n1.mxl",
    "joplin_maple_leaf_rag": CORPUS / "joplin" / "maple_leaf_rag.mxl",
    "schoenberg_op19_6": CORPUS / "schoenberg" / "opus19" / "movement6.mxl",
}
QUERY_SHIFT = 12  # excerpts fall between the database's snippet centres


@pytest.fixture(scope="module")
def library():
    """Snippets every 50 px of four engraved piano pieces, PCA-embedded to 32-d; queries shifted by 12 px."""
    snippets, queries, metadata = [], {}, {name: [] for name in ["piece", "page", "system", "page_x", "strip_x"]}
    for piece, path in PIECES.items():
        score = sheet.unroll([pages_lib.rasterize_svg(pages_lib.engrave_svg(path)[0])])
        centres = sheet.snippet_centres(score.width, hop=50)
        page, system, page_x = score.strip_to_page(centres)
        snippets.append(windows.snippets(score.strip, centres))
        queries[piece] = windows.snippets(score.strip, centres + QUERY_SHIFT)
        for name, values in zip(metadata, [[piece] * len(centres), page, system, page_x, centres]):
            metadata[name].extend(values)
    pixels = np.concatenate(snippets).reshape(-1, 80 * 100)
    mean = pixels.mean(axis=0)
    basis = np.linalg.svd(pixels - mean, full_matrices=False)[2][:32].T

    def embed(images):
        return (images.reshape(len(images), -1) - mean) @ basis

    queries = {piece: embed(images) for piece, images in queries.items()}
    return embed(pixels), {name: np.asarray(values) for name, values in metadata.items()}, queries


def build(library, method="auto"):
    embeddings, metadata, _ = library
    index = index_lib.SnippetIndex(model_id="pca32@test", method=method)
    index.add(embeddings, **metadata)
    return index


def all_queries(library):
    return np.concatenate(list(library[2].values()))


def assert_same_results(expected, actual):
    """Equal top-k: same similarities, and the same rows wherever no near-tie makes the order arbitrary."""
    (expected_similarities, expected_rows), (similarities, rows) = expected, actual
    np.testing.assert_allclose(similarities, expected_similarities, atol=1e-5)
    ties = np.abs(np.diff(expected_similarities, axis=1)) < 1e-5
    ambiguous = np.zeros_like(ties[:, :1]) | np.pad(ties, ((0, 0), (1, 0))) | np.pad(ties, ((0, 0), (0, 1)))
    assert ambiguous.mean() < 0.05
    np.testing.assert_array_equal(rows[~ambiguous], expected_rows[~ambiguous])


def test_numpy_and_faiss_flat_agree(library):
    queries = all_queries(library)
    exact = build(library, "numpy").search(queries, k=25)
    assert exact[0].shape == exact[1].shape == (len(queries), 25)
    assert np.all(np.diff(exact[0], axis=1) <= 0)
    assert_same_results(exact, build(library, "flat").search(queries, k=25))
    # Chunking does not change brute force's answer (a memory-mapped index streams through it in chunks).
    index = build(library, "numpy")
    chunked = index_lib.brute_force_search(index.embeddings, index_lib.normalize(queries), 25, chunk_size=97)
    np.testing.assert_array_equal(chunked[1], exact[1])


def test_approximate_indexes_find_most_true_neighbours(library):
    queries = all_queries(library)
    _, exact = build(library, "numpy").search(queries, k=25)
    for method in ["hnsw", "ivf"]:
        _, rows = build(library, method).search(queries, k=25)
        recall = np.mean([len(set(a) & set(b)) / 25 for a, b in zip(rows.tolist(), exact.tolist())])
        assert recall > 0.9, (method, recall)


def test_auto_switches_to_hnsw_at_the_threshold(library, monkeypatch):
    assert build(library).prepare() is None  # numpy brute force
    monkeypatch.setattr(index_lib, "FAISS_THRESHOLD", len(library[0]))
    assert build(library).prepare().__class__.__name__ == "IndexHNSWFlat"


def test_embeddings_are_normalised_and_self_match(library):
    index = build(library)
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    similarities, rows = index.search(library[0][:5] * 7.0, k=1)  # scale does not matter to cosine
    np.testing.assert_array_equal(rows[:, 0], np.arange(5))
    np.testing.assert_allclose(similarities[:, 0], 1.0, atol=1e-5)


def test_identify_ranks_the_queried_piece_first(library):
    index = build(library)
    for piece, queries in library[2].items():
        ranking = index.identify(queries, k=25)
        assert ranking[0][0] == piece, ranking
        assert sum(votes for _, votes in ranking) == 25 * len(queries)
        assert [votes for _, votes in ranking] == sorted((votes for _, votes in ranking), reverse=True)


def test_vote_order_and_ties():
    pieces = np.array([["a", "b", "c"], ["b", "c", "a"], ["b", "d", "c"]])
    # Most votes first; equal votes without similarities: by name.
    assert index_lib.vote(pieces) == [("b", 3), ("c", 3), ("a", 2), ("d", 1)]
    # Equal votes: the piece with the larger summed similarity goes first.
    similarities = np.array([[0.9, 0.5, 0.95], [0.5, 0.9, 0.8], [0.5, 0.1, 0.9]])
    assert index_lib.vote(pieces, similarities) == [("c", 3), ("b", 3), ("a", 2), ("d", 1)]


def test_save_load_round_trip(library, tmp_path):
    index = build(library)
    index.save(tmp_path / "library.index")
    loaded = index_lib.SnippetIndex.load(tmp_path / "library.index", model_id="pca32@test")
    assert isinstance(loaded.embeddings, np.memmap)
    assert len(loaded) == len(index) and loaded.dim == 32 and loaded.model_id == index.model_id
    np.testing.assert_array_equal(np.asarray(loaded.embeddings), index.embeddings)
    for name, values in index.metadata.items():
        np.testing.assert_array_equal(loaded.metadata[name], values)
    queries = all_queries(library)[:50]
    for method in ["numpy", "flat"]:
        loaded.method = method
        assert_same_results(index.search(queries), loaded.search(queries))
    rows = loaded.rows(np.array([[0, 1]]))
    assert rows["piece"].shape == (1, 2) and rows["piece"][0, 0] == "chopin_op6_2"


def test_save_keeps_a_built_approximate_index(library, tmp_path):
    index = build(library, "hnsw")
    queries = all_queries(library)[:50]
    expected = index.search(queries)
    index.save(tmp_path / "library.index")
    header = index_lib.read_header(tmp_path / "library.index")
    assert (header["faiss_index"], header["method"]) == ("hnsw", "hnsw")
    # Loaded without naming a backend, the index searches the way it was built, with the graph it kept.
    loaded = index_lib.SnippetIndex.load(tmp_path / "library.index", model_id="pca32@test")
    hnsw = loaded.prepare()
    assert loaded.method == "hnsw" and hnsw.ntotal == len(index) and hnsw.hnsw.efSearch == 128
    assert_same_results(expected, loaded.search(queries))


@pytest.mark.parametrize("backend", ["ivf", "ivfpq"])
def test_every_backend_is_built_by_its_factory_string_and_kept(library, tmp_path, backend):
    import faiss

    index = build(library, backend)
    queries = all_queries(library)[:50]
    _, exact = build(library, "exact").search(queries, k=25)
    _, rows = index.search(queries, k=25)
    recall = np.mean([len(set(a) & set(b)) / 25 for a, b in zip(rows, exact)])
    # Product quantisation keeps 16 bytes of a 128-byte row: its neighbours are coarser than IVF-Flat's.
    assert recall > (0.9 if backend == "ivf" else 0.5), recall
    assert faiss.extract_index_ivf(index.prepare()).nprobe == 32
    index.save(tmp_path / backend)
    loaded = index_lib.SnippetIndex.load(tmp_path / backend, model_id="pca32@test")
    assert loaded.method == backend and loaded._faiss is not None  # read from the folder, not rebuilt
    assert_same_results(index.search(queries), loaded.search(queries))


def test_audio_side_columns(tmp_path):
    index = index_lib.SnippetIndex(model_id="m")
    index.add(np.eye(4), piece=["p"] * 4, recording=["p_tempo-1000"] * 4, time=[0.0, 2.1, 4.2, 6.3])
    index.save(tmp_path / "audio.index")
    loaded = index_lib.SnippetIndex.load(tmp_path / "audio.index", model_id="m")
    assert loaded.rows(loaded.search(np.eye(4)[2], k=1)[1])["time"][0, 0] == pytest.approx(4.2)


def test_loading_for_another_model_raises(library, tmp_path):
    build(library).save(tmp_path / "library.index")
    with pytest.raises(index_lib.ModelMismatchError, match="pca32@test"):
        index_lib.SnippetIndex.load(tmp_path / "library.index", model_id="bl2-sc@0000")
    assert len(index_lib.SnippetIndex.load(tmp_path / "library.index", model_id=None)) == len(library[0])


def test_model_id_of_tracks_weights():
    weights = [np.ones((3, 3), np.float32), np.zeros(3, np.float32)]
    assert index_lib.model_id_of(weights, "bl2") == index_lib.model_id_of([w.copy() for w in weights], "bl2")
    assert index_lib.model_id_of(weights, "bl2").startswith("bl2@")
    weights[1][0] = 1e-3
    assert index_lib.model_id_of(weights, "bl2") != index_lib.model_id_of(weights[:1], "bl2")


def test_empty_index_raises(tmp_path):
    empty = index_lib.SnippetIndex(model_id="m")
    for method in ["numpy", "flat"]:
        empty.method = method
        with pytest.raises(index_lib.EmptyIndexError, match="empty"):
            empty.search(np.ones(32))
    empty.save(tmp_path / "empty.index")
    with pytest.raises(index_lib.EmptyIndexError):
        index_lib.SnippetIndex.load(tmp_path / "empty.index", model_id="m").identify(np.ones((2, 32)))


def test_add_checks_shapes_and_columns():
    index = index_lib.SnippetIndex(model_id="m")
    index.add(np.eye(3), piece=["a", "b", "c"])
    with pytest.raises(ValueError, match="dim"):
        index.add(np.eye(4), piece=["a"] * 4)
    with pytest.raises(ValueError, match="columns"):
        index.add(np.eye(3), piece=["a"] * 3, page=[0, 0, 0])
    with pytest.raises(ValueError, match="Unknown metadata"):
        index.add(np.eye(3), composer=["x"] * 3)
    with pytest.raises(ValueError, match="Unknown search method"):
        index_lib.SnippetIndex(model_id="m", method="annoy")
