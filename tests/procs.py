"""Whether a process is still running, for tests that kill processes or expect them gone."""
import psutil


def alive(pid):
    """True while ``pid`` is a running process (a zombie awaiting its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone(pid):
    """True once ``pid`` is not a running process."""
    return not alive(pid)
