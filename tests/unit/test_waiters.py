"""Parked long polls: result waiters, take waiters, and their deadlines."""
from tubeway.broker.waiters import Waiter, Waiters


def wait(waiters, job_id, deadline, request=None):
    request = request or f"r-{job_id}-{deadline}".encode()
    waiters.wait_result(job_id, b"client", request, deadline, {"id": job_id, "timeout": 1})
    return request


def take(waiters, deadline, request):
    waiters.wait_take(b"client", request, deadline, {"namespace": "ns", "queues": None, "block": 1})


def requests(found):
    return [w.request_id for w in found]


def test_waiter_holds_what_the_reply_needs():
    waiter = Waiter(b"id", b"req", 5.0, {"id": "j"})
    assert (waiter.identity, waiter.request_id, waiter.deadline, waiter.body, waiter.done) == \
        (b"id", b"req", 5.0, {"id": "j"}, False)


def test_ended_answers_every_waiter_of_the_job_once():
    waiters = Waiters()
    first = wait(waiters, "j1", 10.0, b"a")
    second = wait(waiters, "j1", 20.0, b"b")
    other = wait(waiters, "j2", 10.0, b"c")
    found = waiters.ended("j1")
    assert requests(found) == [first, second] and all(w.done for w in found)
    assert found[0].identity == b"client" and found[0].body == {"id": "j1", "timeout": 1}
    assert waiters.ended("j1") == []
    assert requests(waiters.ended("j2")) == [other]


def test_ended_without_waiters():
    assert Waiters().ended("nobody-waits") == []


def test_answered_waiters_do_not_expire():
    waiters = Waiters()
    wait(waiters, "j1", 10.0)
    waiters.ended("j1")
    assert waiters.expired(100.0) == []
    assert waiters.next_deadline() is None


def test_expired_in_deadline_order():
    waiters = Waiters()
    wait(waiters, "j3", 30.0, b"c")
    wait(waiters, "j1", 10.0, b"a")
    take(waiters, 20.0, b"t")
    wait(waiters, "j4", 40.0, b"d")
    assert waiters.expired(9.99) == []
    found = waiters.expired(30.0)
    assert requests(found) == [b"a", b"t", b"c"] and all(w.done for w in found)
    assert waiters.expired(30.0) == []
    assert waiters.next_deadline() == 40.0


def test_equal_deadlines_expire_in_arrival_order():
    waiters = Waiters()
    for request in (b"1", b"2", b"3"):
        wait(waiters, "j", 5.0, request)
    take(waiters, 5.0, b"4")
    assert requests(waiters.expired(5.0)) == [b"1", b"2", b"3", b"4"]


def test_expiry_prunes_result_waiters():
    waiters = Waiters()
    wait(waiters, "j1", 10.0, b"early")
    wait(waiters, "j1", 50.0, b"late")
    wait(waiters, "j2", 10.0, b"only")
    waiters.expired(10.0)
    assert "j2" not in waiters.results
    assert requests(waiters.results["j1"]) == [b"late"]
    assert requests(waiters.ended("j1")) == [b"late"]
    assert waiters.results == {}


def test_ended_skips_expired_waiters():
    waiters = Waiters()
    wait(waiters, "j", 10.0, b"a")
    wait(waiters, "j", 20.0, b"b")
    waiters.expired(15.0)
    assert requests(waiters.ended("j")) == [b"b"]


def test_takers_are_first_in_first_out():
    waiters = Waiters()
    for deadline, request in [(30.0, b"1"), (10.0, b"2"), (20.0, b"3")]:
        take(waiters, deadline, request)
    assert requests(waiters.live_takers()) == [b"1", b"2", b"3"]
    assert waiters.live_takers()[0].body["namespace"] == "ns"


def test_live_takers_skip_served_and_expired():
    waiters = Waiters()
    for deadline, request in [(30.0, b"1"), (10.0, b"2"), (20.0, b"3"), (40.0, b"4")]:
        take(waiters, deadline, request)
    waiters.live_takers()[0].done = True  # the reactor served it a job
    assert requests(waiters.expired(15.0)) == [b"2"]
    assert requests(waiters.live_takers()) == [b"3", b"4"]
    assert requests(waiters.expired(35.0)) == [b"3"]  # the served one is not answered twice
    assert requests(waiters.live_takers()) == [b"4"]


def test_live_takers_returns_a_copy():
    waiters = Waiters()
    take(waiters, 10.0, b"1")
    waiters.live_takers().clear()
    assert requests(waiters.live_takers()) == [b"1"]


def test_takers_are_not_result_waiters():
    waiters = Waiters()
    take(waiters, 10.0, b"t")
    assert waiters.ended(None) == [] and waiters.results == {}
    assert requests(waiters.live_takers()) == [b"t"]


def test_next_deadline_skips_done_waiters():
    waiters = Waiters()
    assert waiters.next_deadline() is None
    wait(waiters, "j1", 10.0)
    take(waiters, 20.0, b"t")
    wait(waiters, "j3", 30.0)
    assert waiters.next_deadline() == 10.0
    waiters.ended("j1")
    assert waiters.next_deadline() == 20.0
    waiters.live_takers()[0].done = True
    assert waiters.next_deadline() == 30.0
    waiters.ended("j3")
    assert waiters.next_deadline() is None


def test_next_deadline_does_not_expire_anything():
    waiters = Waiters()
    wait(waiters, "j", 10.0, b"a")
    assert waiters.next_deadline() == 10.0 == waiters.next_deadline()
    assert requests(waiters.expired(10.0)) == [b"a"]
