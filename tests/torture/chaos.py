"""The chaos loop: at random moments, kill -9 one part of the system, start it again, wait until whole.

Everything random comes from one seeded RNG, so a run is repeated (as far as the
system's own timing allows) with ``TORTURE_SEED``. Each cycle waits a random moment
(the point is to strike at an arbitrary time, not to wait for anything), kills one of
:data:`rig.TARGETS`, restarts it and polls until ``/healthz`` answers 200 with the pool
at full strength. Targets are dealt from a shuffled deck, so every run of at least as
many cycles as targets kills each of them at least once.
"""
import collections
import datetime
import threading
import time
from dataclasses import dataclass

from rig import TARGETS

#: Seconds between the system being whole again and the next kill: (shortest, longest).
PAUSE = (0.3, 2.5)


@dataclass
class Cycle:
    """One kill and recovery."""

    number: int
    target: str
    victims: list
    pause: float  # seconds waited before the kill
    recovery: float  # seconds from the kill until the system was whole again
    at: float  # when the kill happened (epoch seconds, as job timestamps)

    def __str__(self):
        moment = datetime.datetime.fromtimestamp(self.at).strftime("%H:%M:%S.%f")[:-3]
        return (f"cycle {self.number} at {moment} ({self.at:.3f}): kill -9 {self.target} {self.victims}; "
                f"whole again after {self.recovery:.1f} s")


class Chaos:
    """Runs ``cycles`` kill-and-restart cycles on a :class:`rig.Rig`, striking at ``targets``."""

    def __init__(self, rig, rng, cycles, targets=TARGETS, echo=print):
        self.rig = rig
        self.rng = rng
        self.cycles = cycles
        self.targets = tuple(targets)
        unknown = set(self.targets) - set(TARGETS)
        if unknown or not self.targets:
            raise ValueError(f"chaos targets must be some of {', '.join(TARGETS)}, not {sorted(unknown)}")
        self.echo = echo
        self.done = []
        self._deck = []
        self._pause = threading.Event()  # never set: waited on only to strike at a random moment

    def run(self):
        """Run every cycle; returns the list of :class:`Cycle`."""
        for number in range(1, self.cycles + 1):
            pause = self.rng.uniform(*PAUSE)
            target = self._deal()
            self._pause.wait(pause)
            at, killed_at = time.time(), time.monotonic()
            victims = self.rig.kill(target, self.rng)
            self.rig.restart(target, victims)
            cycle = Cycle(number, target, victims, pause, time.monotonic() - killed_at, at)
            self.done.append(cycle)
            self.echo(f"torture {cycle}")
        return self.done

    def _deal(self):
        """The next target from the deck, shuffled afresh once every target was dealt."""
        if not self._deck:
            self._deck = list(self.targets)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def tally(self):
        """Kills per target, e.g. ``{"broker": 2, "worker": 1, ...}``."""
        counts = collections.Counter(cycle.target for cycle in self.done)
        return {target: counts[target] for target in self.targets}

    def timeline(self):
        """Every cycle done, one line each."""
        return "\n".join(str(cycle) for cycle in self.done)
