"""An example team plugin for Tubeway: the job kind ``team.reverse`` reverses its payload string.

Installed (``pip install ./examples/team_plugin``), it is found through its entry
point in the group ``tubeway`` and loads as the plugin ``team``.
"""
from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.hookspecs import JobKind

KIND = "team.reverse"


@hookimpl
def tubeway_job_kinds():
    """This plugin runs one kind of job."""
    return [JobKind(KIND, runs_on_workers=True, description="Reverses the payload string.")]


@hookimpl
def tubeway_validate_job(spec):
    """Refuse, at submission, a payload that is not a string."""
    if not isinstance(spec.get("payload"), str):
        raise ValidationError("a team.reverse job's payload must be a string", "payload")


@hookimpl
def tubeway_run_job(job, context):
    """Reverse the payload; the job's logs say how long it was."""
    context.log(f"reversing {len(job['payload'])} characters")
    return job["payload"][::-1]
