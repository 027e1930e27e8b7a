import collections

import pytest

from tfds_msmd.corpus import build, setups, sources, synth, varied

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def jobs():
    return build.plan("varied")


def test_plan_mixes_collections_setups_and_sounds(jobs):
    by_collection = collections.Counter(j.source.collection for j in jobs)
    assert set(by_collection) == {name for name, _ in varied.COLLECTIONS}
    train = [j for j in jobs if j.split == "train"]
    assert {j.engraving for j in train} == set(varied.TRAIN_SETUPS)
    sounds = {s for j in train for _, s in j.renders}
    assert {synth.parse_sound(s)[2] for s in sounds} == {"dry", "expr", "room"}
    assert {synth.parse_sound(s)[0] for s in sounds} == set(varied.TRAIN_SOUNDFONTS)
    assert all(len(j.renders) == varied.TRAIN_RENDERS_PER_PIECE for j in train)
    # No piece is planned twice, and test pieces keep the standard test renders.
    assert len({j.source.piece for j in jobs}) == len(jobs)
    assert {j.renders for j in jobs if j.split == "test"} == {tuple((r, "MuseScore_General")
                                                                    for r in varied.TEST_TEMPO_RATIOS)}


def test_figurations_share_their_chorales_split(jobs):
    for j in jobs:
        if j.source.work:
            assert j.split == sources.split_of(j.source.work)


def test_heldout_config_uses_only_unseen_setups_and_sound_on_test_pieces(jobs):
    heldout = build.plan("varied_heldout")
    assert {j.source.piece for j in heldout} == {j.source.piece for j in jobs if j.split == "test"}
    assert {j.engraving for j in heldout} == set(varied.HELDOUT_SETUPS)
    assert not set(varied.HELDOUT_SETUPS) & set(varied.TRAIN_SETUPS)
    assert all(s in setups.SETUPS for s in varied.HELDOUT_SETUPS + varied.TRAIN_SETUPS)
    assert {j.renders for j in heldout} == {((1.0, varied.HELDOUT_SOUND), (1.0, varied.HELDOUT_PIANO))}
    for sound in (varied.HELDOUT_SOUND, varied.HELDOUT_PIANO):
        assert sound.split("-")[0] not in varied.TRAIN_SOUNDFONTS


def test_wide_config_spans_half_to_double_tempo():
    ratios = {r for j in build.plan("varied_wide") if j.split == "train" for r, _ in j.renders}
    assert min(ratios) == 0.5 and max(ratios) == 2.0 and len(ratios) == len(varied.WIDE_RATIOS)
