"""Label selectors in the grammar of Kubernetes and Cloud Foundry, as LIST requirements.

``env=prod,tier in (web,api),!legacy``: comma-separated requirements, all of which
must hold. Each is ``key=value`` or ``key==value`` (equal), ``key!=value`` (differs
or absent), ``key in (a,b)``, ``key notin (a,b)`` (or absent), ``key`` (present) or
``!key`` (absent). :func:`parse_selector` returns the requirements as the broker's
LIST takes them (``{"key", "op", "values"}``, see :mod:`tubeway.broker.job_filters`);
checking keys and values against a dialect's own rules is the dialect's business.
"""
import re

_KEY = r"[\w\-./]+"
#: One requirement: commas inside parentheses belong to it (as Cloud Controller splits them).
_SPLITTER = re.compile(r"(?:\(.*?\)|[^,])+")
_PATTERNS = (
    (re.compile(r"\A(?P<key>.*?) in \((?P<values>.*)\)\Z"), "in"),
    (re.compile(r"\A(?P<key>.*?) notin \((?P<values>.*)\)\Z"), "notin"),
    (re.compile(rf"\A(?P<key>{_KEY})==?(?P<values>.*)\Z"), "="),
    (re.compile(rf"\A(?P<key>{_KEY})!=(?P<values>.*)\Z"), "!="),
    (re.compile(rf"\A(?P<key>{_KEY})(?P<values>)\Z"), "exists"),
    (re.compile(rf"\A!(?P<key>{_KEY})(?P<values>)\Z"), "!exists"),
)


class SelectorError(ValueError):
    """A label selector that does not parse (the message says which part)."""


def _requirement(text):
    for pattern, op in _PATTERNS:
        match = pattern.match(text)
        if match:
            values = match["values"].split(",") if op in ("in", "notin") else [match["values"]]
            while op in ("in", "notin") and values and not values[-1]:
                values.pop()  # as Ruby's split, which Cloud Controller uses, drops trailing empty values
            return {"key": match["key"], "op": op, "values": values if op not in ("exists", "!exists") else []}
    raise SelectorError(f"Invalid label_selector value: '{text}'")


def parse_selector(text):
    """The requirements of a selector string; :class:`SelectorError` if one does not parse or there are none."""
    requirements = [_requirement(part) for part in _SPLITTER.findall(text or "")]
    if not requirements:
        raise SelectorError("Missing label_selector value")
    return requirements
