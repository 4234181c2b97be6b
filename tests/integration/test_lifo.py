"""``lifo`` jobs reach workers newest first, ahead of the rest of their priority, before and after a restart."""
import pytest

from tubeway.core.client import BrokerClient
from brokerkit import BrokerThread, ScriptedWorker, job, poll_until

pytestmark = pytest.mark.integration


def received_order(endpoint, count):
    worker = ScriptedWorker(endpoint, credit=1)
    order = []
    try:
        for _ in range(count):
            [held] = worker.jobs()
            order.append(held["payload"])
            worker.finish(held)
    finally:
        worker.close()
    return order


def test_lifo_order_holds_on_a_live_broker_and_after_a_restart(db_url):
    specs = [job(payload="a"), job(payload="b"), job(payload="c", lifo=True), job(payload="d", lifo=True),
             job(payload="e", priority=-1)]
    broker = BrokerThread(db_url, ready_window=1).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            client.submit(specs)
            client.submit([job(payload="f", lifo=True)])
            assert received_order(broker.endpoint, 3) == ["e", "f", "d"]
            # their results are in before the broker stops, so the restart gives back none of them
            poll_until(lambda: client.list_jobs(state="done", total=True)["total"] == 3)
    finally:
        broker.stop()
    broker = BrokerThread(db_url, ready_window=1).start()  # the rest comes back from storage
    try:
        assert received_order(broker.endpoint, 3) == ["c", "a", "b"]
    finally:
        broker.stop()
