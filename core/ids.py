"""Job ids: UUIDs of version 7 (RFC 9562), time-ordered.

Ids that grow with time land at the end of the id index instead of at random
places in it, which keeps inserts fast as storage grows, and they sort by age.
"""
import os
import time


def new_job_id(now_ns=None):
    """A new UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | (rand & 0xFFFFFFFFFFFFFFFFFFFF)
    value = (value & ~(0xF << 76)) | (0x7 << 76)      # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)      # RFC 4122 variant
    digits = f"{value:032x}"  # as str(uuid.UUID(int=value)) writes it, without making the object
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
