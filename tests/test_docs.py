"""Documentation that must not drift: every hook documented, every setting in the README."""
import inspect
import pathlib
import re

import pytest

from tubeway.core.settings import SETTINGS
from tubeway.plugins import hookspecs

ROOT = pathlib.Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, value in vars(hookspecs).items()
               if name.startswith("tubeway_") and inspect.isfunction(value))


def test_there_are_hooks():
    assert "tubeway_run_job" in HOOKS and len(HOOKS) >= 9


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_a_spec_with_a_docstring(name):
    function = getattr(hookspecs, name)
    assert hasattr(function, "tubeway_spec"), f"{name} is not marked with tubeway.hookspec"
    assert (function.__doc__ or "").strip(), f"hook {name} has no docstring in plugins/hookspecs.py"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_section_in_the_plugin_guide(name):
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert re.search(rf"^#+ +`?{name}`?\s*$", guide, re.MULTILINE), \
        f"docs/plugins.md has no heading for the hook {name}"


def readme_setting_names():
    """Names in the first column of the README's markdown tables (backticks stripped)."""
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    names = set()
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            first = line.strip("|").split("|")[0].strip().strip("`")
            names.add(first)
    return names


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_readme_table(setting):
    assert setting.help.strip(), f"setting {setting.name} has no help"
    assert setting.name in readme_setting_names(), \
        f"README.md's settings table has no row for '{setting.name}' (python -m tubeway.core.settings prints it)"
