// The sandbox `javascript` job commands run in: evaluated once in each V8 isolate, before any command, as
// `(<this function>)(maxLines, maxLineChars)`. It defines one global, `__tubeway` (frozen, not writable):
//   step(), with `this` the JSON text '[command, paramsJson or null, token]' (the host calls it with a string as
//     `this`, which spares V8 compiling a new script per run): post(), then, if it found all clean,
//     run(command, paramsJson); else '[2]'.
//   run(command, paramsJson): compile `command` as the body of `function (params)` and call it; answers
//     '[0, <result JSON>, [lines], dropped]', or '[1, "<error message>", [lines], dropped]' when it threw.
//   post(): delete the globals the last run (and its promise jobs) added and answer 1 when all else a
//     command can reach is as it was before the first run, 0 when not (the isolate must be replaced).
//   logs(): '[[lines], dropped, startedAt, token]' of the last step (Date.now() at its start, the token it
//     was given), for a stopped run.
//   check(command): compile without running; answers "" or the SyntaxError.
// print(), console.log/info/warn/error/debug and require('@arangodb').print append to the run's lines.
//
// What a command can reach without making it is the global object and the builtins reachable from it
// (or handed out by syntax and iterators). The global object and the prototypes of the language's classes
// stay open: a command may change them, post() compares them with what they were, and a run that changed
// one costs its isolate. Every other builtin (namespaces such as Math and JSON, constructors, functions)
// is frozen, which keeps post() cheap; the prototypes are not, because V8's fast paths for regexps,
// arrays, strings and promises stop applying once a prototype's shape changes.
//
// Everything used after setup is captured first, so a command replacing a builtin changes only its run.
(function (maxLines, maxLineChars) {
  'use strict';
  const global = globalThis;
  const {apply, ownKeys, getOwnPropertyDescriptor, getPrototypeOf, isExtensible, deleteProperty} = Reflect;
  const objectKeys = Object.keys, symbolsOf = Object.getOwnPropertySymbols;
  const FunctionCtor = Function, ErrorCtor = Error, StringCtor = String;
  const stringify = JSON.stringify, parse = JSON.parse, freeze = Object.freeze, defineProperty = Object.defineProperty;
  const regexpExec = RegExp.prototype.exec, stringSlice = String.prototype.slice, setHas = Set.prototype.has;
  const dateNow = Date.now;

  // Work the host schedules for later would run between runs, outside any run's limits.
  deleteProperty(Atomics, 'waitAsync');
  deleteProperty(global, 'FinalizationRegistry');
  deleteProperty(global, 'WebAssembly');
  // mini-racer's own timers (script variables: they cannot be deleted, only emptied).
  global.setTimeout = undefined;
  global.clearTimeout = undefined;
  global.__timer_manager = undefined;
  const timerClass = typeof __TimerManager === 'undefined' ? undefined : __TimerManager;

  // -- what a run prints ----------------------------------------------------------------------------------
  let lines = [];
  let dropped = 0;
  let startedAt = 0;
  let stepToken = 0;

  function text(value) {
    if (typeof value === 'string') return value;
    try {
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol'
          || typeof value === 'bigint' || value instanceof ErrorCtor) {
        return StringCtor(value);
      }
      const json = stringify(value);
      return json === undefined ? StringCtor(value) : json;
    } catch (e) {
      try { return StringCtor(value); } catch (e2) { return '[unprintable]'; }
    }
  }

  function print(...values) {
    let line = '';
    for (let i = 0; i < values.length; i++) line += (i ? ' ' : '') + text(values[i]);
    if (lines.length < maxLines) lines[lines.length] = apply(stringSlice, line, [0, maxLineChars]);
    else dropped++;
  }

  const arangodb = freeze({print});  // reachable only through require(), so frozen here
  function require(name) {
    if (name === '@arangodb') return arangodb;
    throw new ErrorCtor(`Cannot find module '${name}'`);
  }

  for (const name of ['log', 'info', 'warn', 'error', 'debug']) console[name] = print;
  global.print = print;
  global.require = require;

  function logsJson() {
    return stringify(lines) + ',' + dropped;
  }

  // -- runs -----------------------------------------------------------------------------------------------
  function run(command, paramsJson) {
    lines = [];
    dropped = 0;
    apply(regexpExec, /(?:)/, ['']);  // clears RegExp.$1 ... and RegExp.input left by the last run
    let json;
    try {
      const fn = new FunctionCtor('params', command);
      json = stringify(apply(fn, undefined, [paramsJson === undefined ? undefined : parse(paramsJson)]));
    } catch (error) {
      return '[1,' + stringify(text(error)) + ',' + logsJson() + ']';
    }
    return '[0,' + (json === undefined ? 'null' : json) + ',' + logsJson() + ']';
  }

  function check(command) {
    try {
      new FunctionCtor('params', command);
      return '';
    } catch (error) {
      return text(error);
    }
  }

  function logs() {
    return '[' + logsJson() + ',' + startedAt + ',' + stepToken + ']';
  }

  // -- the baseline and post() ----------------------------------------------------------------------------
  // Per open object: the object, its prototype, its numbers of keys, of enumerable string keys and of symbols,
  // then per property: key, value, getter, setter, flags.
  const open = [];
  const FIRST = 5;
  const globalKeys = new Set();

  function openPrototypes() {
    const classes = [Object, Function, Array, String, RegExp, Number, Boolean, Symbol, BigInt, Promise, Map, Set,
                     WeakMap, WeakSet, WeakRef, Date, ArrayBuffer, SharedArrayBuffer, DataView, getPrototypeOf(Int8Array),
                     Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
                     Float32Array, Float64Array, BigInt64Array, BigUint64Array, Error, EvalError, RangeError,
                     ReferenceError, SyntaxError, TypeError, URIError, AggregateError];
    for (const name of ['Float16Array', 'Iterator', 'SuppressedError', 'DisposableStack', 'AsyncDisposableStack']) {
      if (typeof global[name] === 'function') classes.push(global[name]);
    }
    const found = new Set(hiddenPrototypes());
    for (const C of classes) found.add(C.prototype);
    return found;
  }

  function hiddenPrototypes() {
    const makers = [() => function* () {}, () => async function () {}, () => async function* () {},
                    () => getPrototypeOf((function* () {})()), () => getPrototypeOf((async function* () {})()),
                    () => [][Symbol.iterator](),
                    () => ''[Symbol.iterator](), () => new Map()[Symbol.iterator](), () => new Set()[Symbol.iterator](),
                    () => /a/[Symbol.matchAll](''), () => [][Symbol.iterator]().map((x) => x),
                    () => Iterator.from({next() {}})];
    const found = [];
    for (const make of makers) {
      try { found.push(getPrototypeOf(make())); } catch (e) { /* not in this V8 */ }
    }
    return found;
  }

  function flags(descriptor) {
    return (descriptor.writable ? 1 : 0) | (descriptor.enumerable ? 2 : 0) | (descriptor.configurable ? 4 : 0);
  }

  function record() {
    const seen = new Set(), openSet = openPrototypes();
    const pending = [global, timerClass, ...openSet];
    while (pending.length) {
      const object = pending.pop();
      if ((typeof object !== 'object' && typeof object !== 'function') || object === null || seen.has(object)) {
        continue;
      }
      seen.add(object);
      const keys = ownKeys(object);
      const entry = [object, getPrototypeOf(object), keys.length, objectKeys(object).length, symbolsOf(object).length];
      for (const key of keys) {
        const d = getOwnPropertyDescriptor(object, key);
        entry.push(key, d.value, d.get, d.set, flags(d));
        pending.push(d.value, d.get, d.set);
      }
      pending.push(entry[1]);
      if (object === global || openSet.has(object)) open.push(entry);
      else freeze(object);
    }
    for (const key of ownKeys(global)) globalKeys.add(key);
    for (const entry of open) valueChecks.push(valueCheck(entry));
  }

  // Per open object: [compare, keys, values, the entry's indexes of its other properties]. compare(object, keys,
  // values) compares its plain data properties, one load site per property: V8 answers each site, which only
  // ever sees one object and one key, from its inline cache, several times faster than a loop reading every
  // property through one site. Accessors, undefined and NaN values are left to sameProperty.
  const valueChecks = [];
  function valueCheck(entry) {
    const keys = [], values = [], others = [];
    let body = 'return true';
    for (let j = FIRST; j < entry.length; j += 5) {
      const value = entry[j + 1];
      if (entry[j + 2] !== undefined || entry[j + 3] !== undefined || value === undefined || value !== value) {
        others.push(j);
      } else {
        const name = entry[j];
        const load = typeof name === 'string' && apply(regexpExec, /^[A-Za-z_$][\w$]*$/, [name]) ? `.${name}`
          : `[k[${keys.length}]]`;
        body += ` && o${load} === v[${keys.length}]`;
        keys.push(entry[j]);
        values.push(value);
      }
    }
    return [new FunctionCtor('o', 'k', 'v', body), keys, values, others];
  }

  // Without defineProperty and its kin, a command cannot turn a property into an accessor, hide one or change
  // its attributes, so post() may read values, which is cheap, instead of comparing descriptors. A run that
  // called one of them (on anything) gets the full comparison.
  let redefined = false;
  function watch(object, name) {
    const original = object[name];
    object[name] = {[name](...args) { redefined = true; return apply(original, this, args); }}[name];
    defineProperty(object[name], 'length', {value: original.length});
  }
  watch(Object, 'defineProperty');
  watch(Object, 'defineProperties');
  watch(Reflect, 'defineProperty');
  watch(Object.prototype, '__defineGetter__');
  watch(Object.prototype, '__defineSetter__');
  // It defines a non-enumerable 'stack' on any object. The stack it records leaves out the wrapper's frame.
  const originalCapture = Error.captureStackTrace;
  const capture = {captureStackTrace(object, constructorOpt) {
    redefined = true;
    return apply(originalCapture, this, [object, constructorOpt === undefined ? capture : constructorOpt]);
  }}.captureStackTrace;
  Error.captureStackTrace = capture;

  function sameShape(entry) {
    const object = entry[0];
    return getPrototypeOf(object) === entry[1] && isExtensible(object) && objectKeys(object).length === entry[3]
      && symbolsOf(object).length === entry[4];
  }

  function sameValues(i) {
    const entry = open[i], object = entry[0], check = valueChecks[i], others = check[3];  // no iterators here
    if (!check[0](object, check[1], check[2])) return false;
    for (let o = 0; o < others.length; o++) {
      if (!sameProperty(object, entry, others[o])) return false;
    }
    return true;
  }

  function sameDescriptors(entry) {
    if (ownKeys(entry[0]).length !== entry[2]) return false;
    for (let j = FIRST; j < entry.length; j += 5) {
      if (!sameProperty(entry[0], entry, j)) return false;
    }
    return true;
  }

  function sameProperty(object, entry, j) {
    const d = getOwnPropertyDescriptor(object, entry[j]);
    if (d === undefined || d.get !== entry[j + 2] || d.set !== entry[j + 3] || flags(d) !== entry[j + 4]) {
      return false;
    }
    const value = d.value, expected = entry[j + 1];
    return value === expected || (value !== value && expected !== expected);
  }

  // A global added without defineProperty and its kin is enumerable or a symbol: listing those costs a fifth
  // of listing them all.
  function dropNewGlobals() {
    return redefined ? dropNew(ownKeys(global)) : dropNew(objectKeys(global)) && dropNew(symbolsOf(global));
  }

  function dropNew(keys) {
    for (let i = 0; i < keys.length; i++) {
      if (!apply(setHas, globalKeys, [keys[i]]) && !deleteProperty(global, keys[i])) return false;
    }
    return true;
  }

  function clean() {
    // mini-racer's timer class is a script binding, not a global property: a command could reassign it.
    if (!dropNewGlobals() || (typeof __TimerManager === 'undefined' ? undefined : __TimerManager) !== timerClass) {
      return false;
    }
    for (let i = 0; i < open.length; i++) {
      if (!sameShape(open[i])) return false;  // every prototype first, so reading a value meets no stranger
    }
    for (let i = 0; i < open.length; i++) {
      if (!(redefined ? sameDescriptors(open[i]) : sameValues(i))) return false;
    }
    return true;
  }

  function post() {
    try {
      return clean() ? 1 : 0;
    } catch (error) {
      return 0;
    } finally {
      redefined = false;
    }
  }

  function step() {
    startedAt = dateNow();
    const input = parse(this);
    stepToken = input[2];
    return post() === 1 ? run(input[0], input[1] === null ? undefined : input[1]) : '[2]';
  }

  const api = {step, run, post, logs, check};
  defineProperty(global, '__tubeway', {value: api, writable: false, enumerable: false, configurable: false});
  record();
})
