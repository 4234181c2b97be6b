"""Lock tokens: an unguessable secret per attempt of a job, held by whoever runs that attempt.

A token is a keyed BLAKE2b MAC of the job's id, attempt number and start time under a key the broker
keeps in storage (made once, so tokens outlive a broker restart for jobs that keep running
through one, as taken jobs do). Nothing per job is stored: a token is valid while the
attempt it was made for holds the job (running or cancelling, same attempt, same start);
a token of an earlier or later attempt never is.
"""
import hashlib
import hmac
import secrets

from tubeway.broker.store.models import BrokerKey

KEY_NAME = "lock_tokens"
HOLDING = ("running", "cancelling")


def load_key(name=KEY_NAME):
    """The broker's key for ``name``, made (random, 256 bits) and stored the first time."""
    row = BrokerKey.get_or_none(BrokerKey.name == name)
    if row is None:
        BrokerKey.insert(name=name, value=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = BrokerKey.get(BrokerKey.name == name)
    return bytes.fromhex(row.value)


class Locks:
    """Makes and checks the lock tokens of job attempts."""

    def __init__(self, key):
        self.key = key

    def token(self, record):
        """The token of the attempt a running record is in."""
        message = f"{record['id']}\0{record['attempts']}\0{record['started_at']!r}".encode()
        return hashlib.blake2b(message, key=self.key, digest_size=20).hexdigest()

    def holds(self, record, token):
        """True if ``token`` is the lock of the attempt holding ``record`` now."""
        if record["state"] not in HOLDING or record.get("started_at") is None or not isinstance(token, str):
            return False
        return hmac.compare_digest(self.token(record), token)
