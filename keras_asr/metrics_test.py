import numpy as np
import pytest

from keras_asr import metrics


@pytest.mark.single_backend
def test_ranks_match_hand_computed():
    # Candidates on the unit circle; query i's true item is candidate i.
    angles = np.deg2rad([0.0, 90.0, 180.0, 270.0])
    candidates = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # q0 sits on c0 (rank 1); q1 at 10 deg is closest to c0, then c1 (rank 2);
    # q2 at 280 deg: c3, c0, c2 ... -> c2 is third (rank 3)? c3 (10 deg), c0 (80), c2 (100): rank 3.
    # q3 at 5 deg, scaled by 3 (cosine ignores the norm): c0, c1 (85), c3 (95) -> rank 3.
    q_angles = np.deg2rad([0.0, 10.0, 280.0, 5.0])
    queries = np.stack([np.cos(q_angles), np.sin(q_angles)], axis=1) * np.array([[1], [1], [1], [3]])
    np.testing.assert_array_equal(metrics.retrieval_ranks(queries, candidates), [1, 2, 3, 3])
    np.testing.assert_array_equal(metrics.retrieval_ranks(queries, candidates, chunk_size=3), [1, 2, 3, 3])


@pytest.mark.single_backend
def test_ties_count_against_the_query():
    same = np.ones((3, 4))
    np.testing.assert_array_equal(metrics.retrieval_ranks(same, same), [3, 3, 3])


@pytest.mark.single_backend
def test_summary_statistics():
    m = metrics.retrieval_metrics([1, 2, 3, 30])
    assert m["R@1"] == 25.0 and m["R@5"] == 75.0 and m["R@10"] == 75.0 and m["R@25"] == 75.0
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 30) / 4)
    assert m["MR"] == 2.5 and m["n"] == 4


@pytest.mark.single_backend
def test_both_directions_and_tables():
    rng = np.random.default_rng(0)
    sheet = rng.normal(size=(50, 8))
    audio = sheet + 0.01 * rng.normal(size=(50, 8))
    both = metrics.evaluate_retrieval(sheet, audio)
    assert both["audio2sheet"]["MRR"] == 1.0 and both["sheet2audio"]["R@1"] == 100.0
    table = metrics.format_table2({"BL2-SC": both}, "sheet2audio")
    assert "| BL2-SC | 100.00 | 100.00 | 100.00 | 100.00 | 1.00 | 1 |" in table
    table3 = metrics.format_table3({"BL2-SC": {0.5: 0.44, 1.0: both, 2: 0.46}})
    assert "| BL2-SC | 0.44 | - | 1.00 | - | 0.46 |" in table3
