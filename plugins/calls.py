"""Calling hook implementations one at a time, which pluggy's own hook calls cannot isolate.

The manager calls implementations itself to route a job to some plugins only, to
run lifecycle hooks one by one (a failure is logged, the next still runs) and to run
``tubeway_wrap_job`` wrappers so that a wrapper's own exception never fails a job.
"""
import logging

log = logging.getLogger("tubeway.plugins")


def call(impl, args):
    """Call one implementation with the arguments it names, from ``args`` (a dict)."""
    return impl.function(*[args[name] for name in impl.argnames])


def call_order(hook):
    """Implementations in the order pluggy calls them (last registered first, wrappers outermost)."""
    return list(reversed(hook.get_hookimpls()))


def registration_order(hook):
    """Plain implementations in registration order, honouring tryfirst and trylast."""
    impls = [i for i in hook.get_hookimpls() if not (i.wrapper or i.hookwrapper)]
    return sorted(impls, key=lambda i: 0 if i.tryfirst else 2 if i.trylast else 1)


def run_wrapped(wrappers, args, inner):
    """Run ``inner`` inside new-style wrappers (outermost first); a wrapper's own failure is logged."""
    entered = []
    for impl in wrappers:
        try:
            generator = call(impl, args)
            next(generator)
        except Exception:
            log.exception("plugin '%s': tubeway_wrap_job failed before the job ran; skipped", impl.plugin_name)
            continue
        entered.append((impl, generator))
    try:
        outcome = (inner(), None)
    except Exception as exc:
        outcome = (None, exc)
    for impl, generator in reversed(entered):
        outcome = _teardown(impl, generator, outcome)
    result, error = outcome
    if error is not None:
        raise error
    return result


def _teardown(impl, generator, outcome):
    result, error = outcome
    try:
        if error is None:
            generator.send(result)
        else:
            generator.throw(error)
    except StopIteration as stop:
        return stop.value, None
    except Exception as exc:
        if exc is not error:
            log.exception("plugin '%s': tubeway_wrap_job failed after the job ran; ignored", impl.plugin_name)
        return outcome
    generator.close()
    log.error("plugin '%s': tubeway_wrap_job yielded more than once; ignored", impl.plugin_name)
    return outcome
