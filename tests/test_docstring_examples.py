"""The docstring examples of the modules whose examples run on their own (no score or model file) are run as
doctests, so that what they show stays what the code does."""

import doctest
import importlib

import pytest

SELF_CONTAINED = ["keras_asr.audio", "keras_asr.identification", "keras_asr.index", "keras_asr.matching"]


@pytest.mark.single_backend
@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring example left: drop it from the list"
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} fail (above)"
