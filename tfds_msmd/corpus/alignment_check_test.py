import pytest

from tfds_msmd.corpus import alignment_check

pytestmark = pytest.mark.single_backend


def test_real_alignment_passes_and_beats_the_control(tiny_corpus, capsys):
    summary = alignment_check.check_alignment(tiny_corpus)
    assert summary.checked > 100 and summary.performances == 4
    assert summary.passed > 0.95 and summary.control < 0.4
    assert "alignment check" in capsys.readouterr().out


@pytest.mark.parametrize("shift", [-4, 5])
def test_shifted_alignment_fails(tiny_corpus, shift):
    summary = alignment_check.check_alignment(tiny_corpus, shift=shift, verbose=False)
    assert summary.passed < 0.5
