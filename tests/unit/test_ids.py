"""Job ids are RFC 9562 version 7 UUIDs that sort by creation time."""
import uuid

from tubeway.core.ids import new_job_id, new_job_ids


def test_ids_are_version_7_uuids():
    parsed = uuid.UUID(new_job_id())
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_sort_by_time_and_differ():
    earlier = new_job_id(now_ns=1_700_000_000_000_000_000)
    later = new_job_id(now_ns=1_700_000_000_001_000_000)
    assert earlier < later
    assert len({new_job_id() for _ in range(1000)}) == 1000


def test_the_time_is_readable_from_the_id():
    job_id = new_job_id(now_ns=1_700_000_000_123_000_000)
    assert uuid.UUID(job_id).int >> 80 == 1_700_000_000_123


def test_a_batch_of_ids_is_distinct_version_7_and_ordered_by_time():
    batch = new_job_ids(500, now_ns=1_700_000_000_000_000_000)
    assert len(set(batch)) == 500
    for job_id in batch:
        parsed = uuid.UUID(job_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, job_id)
    assert max(batch) < new_job_ids(1, now_ns=1_700_000_000_001_000_000)[0]
