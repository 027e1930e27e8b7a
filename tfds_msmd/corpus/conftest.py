"""Shared fixture: one tiny real corpus per test session (opening measures of two Bach chorales)."""

import pytest

from tfds_msmd.corpus.testing import make_tiny_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return make_tiny_corpus(tmp_path_factory.mktemp("tiny_corpus"), n_pieces=2, max_measures=4)
