"""The peers: how each one's workers are started and how its client runs, per workload.

Every peer runs in its own environment (``envs.py``) with real processes in a
:class:`harness.Stack`: its workers first, then its client (which warms up, so it
starts measuring only once the workers answer), whose last output line is the
figures as JSON. Concurrency: each peer gets 2 worker processes; on the sleep workload the
peers that run several jobs per process at once (threads or async) get
:data:`CONCURRENCY` per process, like Tubeway's default ``worker_threads``.
"""
import json
from pathlib import Path

from harness import poll

DRIVERS = Path(__file__).resolve().parent / "drivers"
CONCURRENCY = 4
HUEY_POLL = ["--delay", "0.001", "--max-delay", "0.01"]


class Peer:
    """One peer configuration: its environment, its worker and client commands, a note for the report."""

    def __init__(self, name, env, workers, client, note):
        self.name, self.env, self.note = name, env, note
        self._workers, self._client = workers, client

    def workers(self, env, workload, redis, stack):
        """``[(name, argv, extra environment), ...]`` of the worker processes for ``workload``."""
        return [(f"{self.name}-worker{n}", argv, self.environ(env, redis, stack))
                for n, argv in enumerate(self._workers(env, workload, redis), 1)]

    def client(self, env, workload, args):
        """The client's argv; ``args`` are the workload's count, timeout and delay bounds."""
        return self._client(env, workload, args)

    def environ(self, env, redis, stack):
        """Variables every process of this peer gets."""
        return {"PYTHONPATH": str(DRIVERS), "NODE_PATH": str(env.dir / "node_modules"),
                "PEER_HUEY_DB": str(stack.dir / "huey.db"), "PEER_REDIS_URL": redis.url(0) if redis else "",
                "PEER_RESULT_URL": redis.url(1) if redis else "", "PEER_REDIS_PORT": str(redis.port if redis else 0),
                "PEER_REDIS_DB": str(redis.db if redis else 0)}

    @property
    def uses_redis(self):
        """All but Huey."""
        return self.env != "huey"


def _pyclient(module):
    return lambda env, workload, args: [env.python, str(DRIVERS / "pyclient.py"), module, workload, *args]


def _huey_workers(env, workload, redis):
    if workload == "sleep":
        one = [env.bin("huey_consumer"), "huey_app.huey", "-k", "thread", "-w", str(CONCURRENCY), *HUEY_POLL, "-q"]
        return [one, one]
    return [[env.bin("huey_consumer"), "huey_app.huey", "-k", "process", "-w", "2", *HUEY_POLL, "-q"]]


def _rq_workers(worker_class):
    def workers(env, workload, redis):
        argv = [env.bin("rq"), "worker", "-u", redis.url(0), "--with-scheduler", "-q", "-w", worker_class, "bench"]
        return [argv, argv]
    return workers


def _celery_workers(env, workload, redis):
    base = [env.bin("celery"), "-A", "celery_app", "worker", "-l", "WARNING"]
    if workload == "sleep":
        return [base + ["--pool", "threads", "-c", str(CONCURRENCY), "-n", f"w{n}@%h"] for n in (1, 2)]
    return [base + ["--pool", "prefork", "-c", "2", "-n", "w1@%h"]]


def _bullmq_workers(env, workload, redis):
    argv = ["node", str(DRIVERS / "bullmq_bench.cjs"), "worker", str(CONCURRENCY)]
    return [argv, argv]


PEERS = {
    "huey": Peer("huey", "huey", _huey_workers, _pyclient("huey"),
                 "SqliteHuey defaults (WAL; results stored). One consumer `-k process -w 2`; on the sleep workload two "
                 f"consumers `-k thread -w {CONCURRENCY}`. Polling tightened to `--delay 0.001 --max-delay 0.01` "
                 "(defaults 0.1 s and 10 s would put 100 ms+ on an idle queue). No bulk enqueue: one call a job. "
                 "Delayed jobs: `schedule(delay=...)`, moved to the queue by the consumer's scheduler (1 s tick)."),
    "rq": Peer("rq", "rq", _rq_workers("rq.worker.Worker"), _pyclient("rq"),
               "Two `rq worker --with-scheduler` processes, the default forking `Worker` (a fork per job, one job at "
               "a time). `enqueue_many` in pipelines of 1,000; delayed jobs with `enqueue_at`, moved by the "
               "scheduler (1 s interval). Results kept 500 s (default)."),
    "rq-simple": Peer("rq-simple", "rq", _rq_workers("rq.worker.SimpleWorker"), _pyclient("rq"),
                      "As RQ, with `-w rq.worker.SimpleWorker` (runs jobs in the worker process, no fork)."),
    "celery": Peer("celery", "celery", _celery_workers, _pyclient("celery"),
                   "Redis broker, Redis result backend (results stored). One worker `--pool prefork -c 2`; on the "
                   f"sleep workload two workers `--pool threads -c {CONCURRENCY}`. Defaults otherwise (prefetch "
                   "multiplier 4, early ack). One `delay()` a job; delayed jobs with `countdown` (held by the worker "
                   "until due)."),
    "bullmq": Peer("bullmq", "bullmq", _bullmq_workers,
                   lambda env, workload, args: ["node", str(DRIVERS / "bullmq_bench.cjs"), "client", workload, *args],
                   f"Two Node processes, each a `Worker` with `concurrency: {CONCURRENCY}`; `addBulk` in batches of "
                   "1,000; delayed jobs with `opts.delay`; results kept (removeOnComplete off, default)."),
}


def run(peer, env, workload, args, redis, stack, timeout):
    """Start ``peer``'s workers and client in ``stack``; the client's figures (a dict)."""
    if redis is not None:
        redis.flush()
    for name, argv, environ in peer.workers(env, workload, redis, stack):
        stack.start(name, argv, environ)
    client = stack.start(f"{peer.name}-client", peer.client(env, workload, [str(a) for a in args]),
                         peer.environ(env, redis, stack))
    workers = stack.processes[:-1]
    poll(lambda: not client.alive(), timeout, f"{peer.name} {workload}", interval=0.1, processes=workers)
    lines = Path(client.log_path).read_text(errors="replace").strip().splitlines()
    if client.popen.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"{peer.name} client exited {client.popen.returncode}:\n{client.log_tail()}")
    return json.loads(lines[-1])
