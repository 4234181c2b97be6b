"""The ``javascript`` job kind on a real V8: results, logs, errors, limits, isolation between runs, compile checks."""
import concurrent.futures
import os
from types import SimpleNamespace

import pytest

from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import js_engine, js_runtime
from tubeway.plugins.builtin.javascript import MAX_COMMAND_CHARS, check_javascript
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import MAX_LOG_LINES, JobContext, execute_job
from polling import poll_until

SETTINGS = SimpleNamespace(plugins=None, js_time_limit=0.5, js_memory_limit=32 * 1024 * 1024)
#: For memory bombs: time enough to fill the heap on a slow machine.
LONGER = SimpleNamespace(plugins=None, js_time_limit=30.0, js_memory_limit=32 * 1024 * 1024)


@pytest.fixture(scope="module", autouse=True)
def v8():
    """V8 started on the main thread, as the plugin's tubeway_startup does; every isolate closed after."""
    js_engine.start_v8()
    yield
    js_runtime.close_all()


@pytest.fixture(scope="module")
def pm():
    return PluginManager.load(SETTINGS)


def run(pm, command, timeout=None, cancelled=False, settings=SETTINGS, **payload):
    """Run one job as a worker thread would; returns the result record."""
    job = {"id": "j1", "kind": "javascript", "payload": {"command": command, **payload}, "attempts": 1,
           "timeout": timeout}
    context = JobContext(job, settings)
    if cancelled:
        context.cancelled.set()
    return execute_job(pm, job, context)


def result(pm, command, settings=SETTINGS, **payload):
    record = run(pm, command, settings=settings, **payload)
    assert record["state"] == "done", record["error"]
    return record["result"]


def test_params_reach_the_command(pm):
    params = {"name": "a", "list": [1, {"b": None}], "n": 2.5}
    assert result(pm, "return [params.name, params.list[1], params.n * 2, typeof params]", params=params) == \
        ["a", {"b": None}, 5.0, "object"]
    assert result(pm, "return params", params="text") == "text"
    assert result(pm, "return typeof params") == "undefined"


@pytest.mark.parametrize("expression, value", [
    ("1", 1), ("-2.5", -2.5), ("'text'", "text"), ("true", True), ("false", False), ("null", None),
    ("[1, 'a', [null]]", [1, "a", [None]]), ("({a: {b: [1, 2]}, c: 'd'})", {"a": {"b": [1, 2]}, "c": "d"}),
    ("undefined", None), ("(() => 1)", None), ("NaN", None), ("new Date(0)", "1970-01-01T00:00:00.000Z"),
])
def test_the_returned_value_is_the_result_as_json(pm, expression, value):
    assert result(pm, f"return {expression};") == value


def test_text_survives_both_ways_and_lone_surrogates_become_replacement_characters(pm):
    assert result(pm, "return [params, params.length]", params="é \u2028 😀") == ["é \u2028 😀", 6]
    record = run(pm, "print('\\ud800!'); return '\\udc00' + params", params="\ud800")
    assert record["result"] == "\ufffd\ufffd" and record["logs"] == ["\ufffd!"]


def test_a_command_without_return_gives_null(pm):
    assert result(pm, "var x = 1 + 1;") is None


def test_every_print_form_writes_a_line_to_the_logs(pm):
    record = run(pm, "print('p', 1, {a: [2]}); console.log('log'); console.info('info'); console.warn('warn');"
                     "console.error('error'); console.debug('debug'); require('@arangodb').print('arango', null);"
                     "print(undefined, [1, 'x'], new Error('e')); return 'ok'")
    assert record["state"] == "done" and record["result"] == "ok"
    assert record["logs"] == ['p 1 {"a":[2]}', "log", "info", "warn", "error", "debug", "arango null",
                              'undefined [1,"x"] Error: e']


def test_lines_past_the_log_limit_are_counted_not_kept(pm):
    logs = run(pm, "for (let i = 0; i < 5000; i++) print(i); return 1")["logs"]
    assert len(logs) == MAX_LOG_LINES and logs[0] == "0"
    assert logs[-1] == f"... {5000 - MAX_LOG_LINES + 1} more lines dropped"


@pytest.mark.parametrize("command, error", [
    ("throw new TypeError('bad input')", "JavaScriptError: TypeError: bad input"),
    ("throw 'a string'", "JavaScriptError: a string"),
    ("return undefinedName + 1", "JavaScriptError: ReferenceError: undefinedName is not defined"),
    ("return 1n", "JavaScriptError: TypeError: Do not know how to serialize a BigInt"),
    ("const a = {}; a.a = a; return a", "JavaScriptError: TypeError: Converting circular structure to JSON"),
    ("return 1 +* 2", "JavaScriptError: SyntaxError: Unexpected token '*'"),
    ("function f() { f(); } f()", "JavaScriptError: RangeError: Maximum call stack size exceeded"),
])
def test_a_command_that_throws_fails_with_the_engines_message(pm, command, error):
    record = run(pm, f"print('before'); {command}")
    assert record["state"] == "failed" and record["error"].startswith(error)
    if "SyntaxError" not in error:
        assert record["logs"] == ["before"]


def test_an_infinite_loop_is_stopped_at_the_time_limit_and_the_next_run_works(pm):
    record = run(pm, "print('looping'); while (true) {}")
    assert record["state"] == "failed"
    assert record["error"] == "JavaScriptLimit: the command ran past js_time_limit (0.5 s) and was stopped"
    assert record["logs"] == ["looping"]
    assert result(pm, "return 'next'") == "next"


def test_runaway_promise_jobs_do_not_cost_the_next_run(pm):
    assert result(pm, "Promise.resolve().then(() => { while (true) {} }); return 'returned'") == "returned"
    # The next run on this thread finds the isolate held past the last run's limit, and runs on a fresh one.
    assert result(pm, "return 'next'") == "next"


def test_promise_jobs_still_running_at_the_limit_are_stopped_when_no_run_comes(pm):
    run(pm, "return 0")
    held = js_runtime.isolate_counts()[0]
    assert result(pm, "Promise.resolve().then(() => { while (true) {} }); return 'returned'") == "returned"
    poll_until(lambda: js_runtime.isolate_counts()[0] == held - 1, timeout=10, what="the held isolate closed")
    assert result(pm, "return 'next'") == "next"


def test_a_memory_bomb_in_promise_jobs_costs_its_isolate_not_the_next_run(pm):
    assert result(pm, "Promise.resolve().then(() => { const a = []; while (true) a.push(new Array(10000).fill(1)); });"
                      "return 'returned'", settings=LONGER) == "returned"
    assert result(pm, "return [1, 2].map(x => x * 2)", settings=LONGER) == [2, 4]


def test_promise_jobs_within_the_limit_run_before_the_next_run(pm):
    assert result(pm, "Promise.resolve().then(() => { const end = Date.now() + 200; while (Date.now() < end) {} "
                      "globalThis.late = 1; }); return 1") == 1
    assert result(pm, "return typeof late") == "undefined"


def test_a_job_timeout_shorter_than_the_limit_wins(pm):
    record = run(pm, "while (true) {}", timeout=0.2)
    assert record["state"] == "failed" and record["error"] == "timed out after 0.2 s"


def test_a_cancelled_run_stops(pm):
    record = run(pm, "while (true) {}", cancelled=True)
    assert record["state"] == "failed" and "cancelled" in record["error"]
    assert result(pm, "return 1") == 1


@pytest.mark.parametrize("bomb", [
    "const a = []; while (true) a.push(new Array(10000).fill(1.5));",
    "let s = 'x'; const keep = []; while (true) { s = s + s; keep.push(s + '!'); }",
    "const m = new Map(); for (let i = 0; ; i++) m.set(i, {i, text: 'v' + i});",
])
def test_a_memory_bomb_is_stopped_at_the_memory_limit_and_the_next_run_works(pm, bomb):
    record = run(pm, f"print('allocating'); {bomb}", settings=LONGER)
    assert record["state"] == "failed"
    assert record["error"] in (
        f"JavaScriptLimit: the command ran out of memory: its heap passed js_memory_limit ({32 * 1024 * 1024} bytes)",
        "JavaScriptError: RangeError: Invalid string length")  # strings may hit V8's own length limit first
    assert result(pm, "return [1, 2, 3].length") == 3


def test_globals_of_one_run_are_invisible_to_the_next(pm):
    assert result(pm, "leaked = 1; globalThis.alsoLeaked = 2; Object.defineProperty(globalThis, 'hidden', "
                      "{value: 3, enumerable: false, configurable: true}); var local = 4; return leaked") == 1
    assert result(pm, "return [typeof leaked, typeof alsoLeaked, typeof hidden, typeof local]") == \
        ["undefined"] * 4


def test_a_prototype_changed_by_one_run_is_pristine_in_the_next(pm):
    assert result(pm, "Array.prototype.sum = function () { return this.reduce((a, b) => a + b, 0); };"
                      "String.prototype.trim = () => 'patched'; delete Array.prototype.map;"
                      "Object.defineProperty(globalThis, 'pinned', {value: 1}); return [[1, 2].sum(), ' a '.trim()]") == \
        [3, "patched"]
    assert result(pm, "return [typeof [].sum, ' a '.trim(), typeof [].map, typeof pinned]") == \
        ["undefined", "a", "function", "undefined"]


@pytest.mark.parametrize("change, probe, pristine", [
    ("Object.defineProperty(Array.prototype, 'map', {get() { return () => 'spy'; }, configurable: true})",
     "[1].map(x => x)", [1]),
    ("String.prototype.__defineGetter__('trim', () => () => 'spy')", "' a '.trim()", "a"),
    ("Array.prototype[Symbol.for('stash')] = 'secret'", "[][Symbol.for('stash')] === undefined", True),
    ("class Leak { constructor() { return Object.prototype; } }; class Field extends Leak { stash = 1 }; new Field()",
     "({}).stash === undefined", True),
    ("Object.defineProperty(Object.prototype, 'stash', {value: 1, enumerable: false})", "({}).stash === undefined",
     True),
    ("Object.setPrototypeOf(Map.prototype, {stash: 1})", "new Map().stash === undefined", True),
    ("Error.captureStackTrace(Object.prototype)", "'stack' in {}", False),
    ("Object.freeze(Array.prototype)", "Object.isFrozen(Array.prototype)", False),
    ("delete Error.prototype.name", "new Error('x').toString()", "Error: x"),
    ("Number.prototype.toFixed = () => 'spy'", "(1).toFixed(1)", "1.0"),
    ("globalThis.Map = null", "typeof Map", "function"),
    ("globalThis[Symbol.for('stash')] = 1", "globalThis[Symbol.for('stash')] === undefined", True),
    ("Object.assign(globalThis, {stash: 1})", "typeof stash", "undefined"),
    ("Object.defineProperty(globalThis, 'Set', {get() { return 'spy'; }})", "typeof Set", "function"),
])
def test_whatever_a_run_changes_in_reach_is_pristine_for_the_next(pm, change, probe, pristine):
    run(pm, change)
    assert result(pm, f"return {probe}") == pristine


def test_capture_stack_trace_still_leaves_out_its_own_frame(pm):
    assert result(pm, "function f() { const o = {}; Error.captureStackTrace(o); return o.stack; } return f()"
                  ).splitlines()[1].strip().startswith("at f ")


def test_promise_jobs_cannot_leave_state_for_the_next_run(pm):
    assert result(pm, "Promise.resolve().then(() => { globalThis.late = 1; String.prototype.trim = null; });"
                      "return 1") == 1
    assert result(pm, "return [typeof late, typeof ''.trim]") == ["undefined", "function"]


def test_builtin_namespaces_constructors_and_functions_are_frozen(pm):
    assert result(pm, "Math.random = () => 4; JSON.extra = 1; Array.from.x = 1;"
                      "return [Math.random() === 4, typeof JSON.extra, Array.from.x]") == [False, "undefined", None]
    record = run(pm, "'use strict'; Math.random = () => 4;")
    assert record["state"] == "failed" and "read only property 'random'" in record["error"]
    assert result(pm, "require('@arangodb').print = null; return typeof require('@arangodb').print") == "function"


def test_ordinary_commands_keep_their_isolate(pm):
    run(pm, "return 0")
    made = js_runtime.isolate_counts()[1]
    for command in ["return /a(b+)c/.exec('xabbc')[1] + 'a-b'.replace(/-/g, '+')",
                    "return [3, 1, 2].sort().map(x => x * 2).filter(x => x > 2).concat([...new Set([1, 1])])",
                    "class A extends Array {}; function B() {}; B.prototype = {}; B.prototype.constructor = B;"
                    "return [new A().length, new B() instanceof B]",
                    "const m = new Map([[1, 2]]); for (const [k, v] of m) print(k, v); return JSON.parse('[1]')",
                    "function* g() { yield 1; } async function f() { await null; } f(); return [...g()]",
                    "return [new Intl.NumberFormat('en').format(1234.5), new Date(0).toISOString().length]",
                    "try { null.x } catch (e) { return e instanceof TypeError }",
                    "return Symbol('s').toString() + String(Math.max(1, 2)) + Object.keys({a: 1})"]:
        assert run(pm, command)["state"] == "done", command
    assert js_runtime.isolate_counts()[1] == made


def test_there_is_no_module_file_network_or_process_access(pm):
    record = run(pm, "return require('fs')")
    assert record["state"] == "failed" and record["error"] == "JavaScriptError: Error: Cannot find module 'fs'"
    assert result(pm, "return [typeof fetch, typeof XMLHttpRequest, typeof process, typeof setTimeout, "
                      "typeof WebAssembly, typeof Deno, typeof Bun]") == ["undefined"] * 7
    assert result(pm, "import('fs').catch(() => {}); return 'no loader'") == "no loader"


def test_the_compile_check_finds_a_syntax_error_without_running_the_command():
    assert check_javascript("print('ran'); }") == "SyntaxError: Unexpected token '}'"
    assert check_javascript("let a = 1; let a = 2;") == "SyntaxError: Identifier 'a' has already been declared"
    assert check_javascript("}); while (true) {} (function () {") is not None
    # Compiling never runs a command: this one would loop until the test timed out.
    assert check_javascript("while (true) {}") is None
    assert check_javascript("return params.a + 1") is None


def test_the_compile_check_is_thread_safe():
    commands = ["return 1", "return (", "print(1)", "}{"] * 8
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(check_javascript, commands))
    assert [answer is None for answer in answers] == [True, False, True, False] * 8


def test_runs_on_different_threads_use_isolates_of_their_own(pm):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        values = list(pool.map(lambda n: result(pm, "globalThis.n = params; return params * 2", params=n),
                               range(30)))
    assert values == [n * 2 for n in range(30)]


@pytest.mark.parametrize("payload", [
    None, "return 1", {"params": 1}, {"command": ""}, {"command": "   "}, {"command": 5},
    {"command": "return 1", "extra": True}, {"command": "x" * (MAX_COMMAND_CHARS + 1)},
])
def test_bad_payloads_are_refused_at_submit(pm, payload):
    with pytest.raises(ValidationError) as caught:
        pm.validate_job({"kind": "javascript", "payload": payload}, SETTINGS)
    assert caught.value.field == "payload"


def test_good_payloads_are_accepted_without_compiling(pm):
    for payload in ({"command": "return 1"}, {"command": "return params", "params": [1]},
                    {"command": "syntax error (", "params": None}):
        pm.validate_job({"kind": "javascript", "payload": payload}, SETTINGS)


def test_a_process_forked_after_v8_started_refuses_to_run_javascript(pm):
    result(pm, "return 1")  # V8 runs in this process now
    pid = os.fork()
    if pid == 0:  # the child never returns to pytest
        try:
            js_engine.start_v8()
        except js_engine.V8Unavailable:
            os._exit(0)
        os._exit(1)
    assert os.waitpid(pid, 0)[1] == 0


def test_an_isolate_keeps_one_python_thread_state_and_gives_it_back_when_closed():
    isolate = js_engine.Isolate(1, 1)
    assert isolate._answers._state == "held"
    assert isolate.eval("1 + 1", 5.0) == 2
    isolate.close()
    assert isolate._answers._state == "released"
