"""Each peer installed into an environment of its own under ``build/peers/<name>``, and its version.

The Python peers get a venv from the system's ``python3`` and ``pip install``; BullMQ gets
``npm install`` in its own folder, run later by the system's ``node``. An install that fails
raises :class:`InstallFailed` with the tail of the installer's output, so the harness can
report the peer as not installed and go on with the others.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

#: Packages per environment (RQ's two workers share one).
PACKAGES = {
    "huey": ["huey"],
    "rq": ["rq"],
    "celery": ["celery[redis]"],
    "bullmq": ["bullmq", "ioredis"],
}
#: The package whose version the report names, per environment.
MAIN_PACKAGE = {"huey": "huey", "rq": "rq", "celery": "celery", "bullmq": "bullmq"}
INSTALL_TIMEOUT = 600


class InstallFailed(Exception):
    """A peer's environment could not be built."""


def _run(argv, cwd=None, timeout=INSTALL_TIMEOUT):
    try:
        out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallFailed(f"{argv[0]}: {exc}") from exc
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-6:])
        raise InstallFailed(f"{' '.join(argv[:3])} ... exited {out.returncode}: {tail}")
    return out.stdout


class PeerEnv:
    """One environment under ``build/peers/<name>``: where it is, how to run things in it."""

    def __init__(self, build_dir, name):
        self.name = name
        self.dir = Path(build_dir).resolve() / name
        self.version = None

    @property
    def python(self):
        """The environment's interpreter (Python peers)."""
        return str(self.dir / "bin" / "python")

    def bin(self, script):
        """A console script of the environment."""
        return str(self.dir / "bin" / script)

    def install(self):
        """Build the environment unless it is there already; sets :attr:`version`."""
        if self.name == "bullmq":
            self._install_npm()
        else:
            self._install_pip()
        return self

    def _install_pip(self):
        stamp = self.dir / ".installed"
        if not stamp.exists():
            if not (self.dir / "bin" / "python").exists():
                _run([shutil.which("python3") or sys.executable, "-m", "venv", "--clear", str(self.dir)])
            _run([self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES[self.name]])
            stamp.write_text("ok\n")
        code = f"import importlib.metadata as m; print(m.version({MAIN_PACKAGE[self.name]!r}))"
        self.version = _run([self.python, "-c", code], timeout=60).strip()

    def _install_npm(self):
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise InstallFailed("node or npm is not installed")
        self.dir.mkdir(parents=True, exist_ok=True)
        package = self.dir / "node_modules" / "bullmq" / "package.json"
        if not all((self.dir / "node_modules" / name / "package.json").exists() for name in PACKAGES["bullmq"]):
            (self.dir / "package.json").write_text('{"name": "peer-bullmq", "private": true}\n')
            _run(["npm", "install", "--no-audit", "--no-fund", "--silent", *PACKAGES["bullmq"]], cwd=self.dir)
        node = _run(["node", "--version"], timeout=30).strip()
        self.version = f"{json.loads(package.read_text())['version']} (Node {node})"


def install(build_dir, name):
    """The installed :class:`PeerEnv` for ``name``; raises :class:`InstallFailed`."""
    return PeerEnv(build_dir, name).install()
