"""Telling what a torture run did: its one-line summary, and log excerpts when it failed."""
import re

#: Log lines worth showing next to a failure: restarts, lost workers, errors.
NOTABLE = re.compile(r"returned \d+ jobs|lost|ERROR|CRITICAL|Traceback|Error:|exited with code|storage:")
EXCERPT_LINES = 40
BLOCK = "@@__xproc_block_delimiter__@@"


def summary_line(backend, seed, chaos, ledger, audit, seconds, settle):
    """One line: backend, seed, cycles, acknowledgements per dialect, redeliveries, longest wait."""
    counts = ledger.counts()
    kills = ", ".join(f"{target} {n}" for target, n in chaos.tally().items())
    unacked = sum(ledger.unacknowledged.values())
    facts = audit.facts
    redeliveries = (f"native retried {facts['native retried (attempts > 1)']} "
                    f"(failed with attempts used up {facts['native failed, attempts used up']}), "
                    f"accepted {facts['accepted redelivered']} "
                    f"(of which after a consumer died {facts['accepted redelivered after a consumer died']}), "
                    f"tasks called twice {facts['tasks called more than once']}, "
                    f"leaves called twice {facts['fraction leaves called more than once']}")
    waited, dialect, key = audit.longest
    longest = f"{waited:.1f} s ({dialect} {key})" if dialect else "n/a"
    return (f"TORTURE backend={backend} seed={seed} cycles={len(chaos.done)} ({kills}); "
            f"acknowledged native={counts['native']} accepted={counts['accepted']} tasks={counts['task']} "
            f"fractions={counts['fraction']} (leaves {facts['fraction leaves']}), unacknowledged {unacked}; "
            f"redeliveries: {redeliveries}; longest ack->end {longest}; "
            f"settled in {settle}; problems {sum(map(len, audit.problems.values()))}; run {seconds:.0f} s")


def log_excerpts(rig):
    """The notable lines of every process's log (see :data:`NOTABLE`), for a failure message."""
    parts = []
    for role in ("broker", "http", "worker"):
        for number, text in enumerate(rig.logs(role), 1):
            text = text.rsplit(BLOCK, 1)[-1]  # xprocess appends each run's log to the same file
            lines = [line for line in text.splitlines() if NOTABLE.search(line)]
            if lines:
                shown = lines[-EXCERPT_LINES:]
                parts.append(f"--- {role} #{number} ({len(lines)} notable lines, last {len(shown)}):\n"
                             + "\n".join(shown))
    return "\n".join(parts)
