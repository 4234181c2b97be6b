"""Job ids: UUIDs of version 7 (RFC 9562), time-ordered.

Ids that grow with time land at the end of the id index instead of at random
places in it, which keeps inserts fast as storage grows, and they sort by age.
"""
import os
import time


def new_job_id(now_ns=None):
    """A new UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    return new_job_ids(1, now_ns)[0]


def new_job_ids(count, now_ns=None):
    """``count`` new UUIDv7 strings of one millisecond, from one read of the random source."""
    millis = ((time.time_ns() if now_ns is None else now_ns) // 1_000_000) & 0xFFFF_FFFF_FFFF
    head = millis << 80 | 0x7 << 76
    random = os.urandom(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        rand = int.from_bytes(random[start:start + 10], "big")
        value = head | (rand & 0x0FFF_3FFF_FFFF_FFFF_FFFF) | 0x2 << 62  # version 7, RFC 4122 variant
        digits = f"{value:032x}"  # as str(uuid.UUID(int=value)) writes it, without making the object
        ids.append(f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}")
    return ids
