"""Object IDs drawn in batches are as long and as unique as single ones."""

from ostor.common.ids import OBJECT_ID_BYTES, new_object_ids


def test_a_batch_of_object_ids_is_distinct_and_full_length():
    ids = new_object_ids(32)
    assert len(ids) == 32 and len(set(ids)) == 32
    assert all(isinstance(i, bytes) and len(i) == OBJECT_ID_BYTES for i in ids)
    assert not set(ids) & set(new_object_ids(32))
    assert new_object_ids(0) == []
