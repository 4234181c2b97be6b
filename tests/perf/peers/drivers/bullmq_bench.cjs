// BullMQ for the peer benchmarks, run by the system's node with NODE_PATH at the harness's install.
//   node bullmq_bench.cjs worker CONCURRENCY
//   node bullmq_bench.cjs client WORKLOAD COUNT TIMEOUT LOW HIGH   -> one JSON line of figures
// The workloads mirror workloads_client.py: a "stamp" job returns the monotonic clock (seconds,
// CLOCK_MONOTONIC like Python's time.monotonic) at its start. BullMQ's defaults otherwise:
// results kept (removeOnComplete off), jobs added in batches with addBulk.
const { Queue, Worker, QueueEvents } = require("bullmq");

const connection = { host: "127.0.0.1", port: Number(process.env.PEER_REDIS_PORT),
                     db: Number(process.env.PEER_REDIS_DB), maxRetriesPerRequest: null };
const NAME = "bench";
const BATCH = 1000;
const WARMUP = 20;
const mono = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const processors = {
  stamp: async () => mono(),
  noop: async () => 1,
  sleep: async () => { await sleep(10); return 1; },
};

function worker(concurrency) {
  const w = new Worker(NAME, (job) => processors[job.name](job), { connection, concurrency: Number(concurrency) });
  const stop = async () => { await w.close(); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

function percentile(sorted, pct) {
  if (!sorted.length) return NaN;
  return sorted[Math.max(1, Math.ceil(sorted.length * pct / 100)) - 1];
}

async function waitDone(queue, target, deadline) {
  for (;;) {
    const done = await queue.getCompletedCount();
    if (done >= target) return;
    if (mono() > deadline) throw new Error(`${done} of ${target} results recorded when the time ran out`);
    await sleep(20);
  }
}

async function drain(queue, task, count, timeout) {
  const before = await queue.getCompletedCount();
  const started = mono(), deadline = started + timeout;
  let sent = 0;
  while (sent < count && mono() < deadline) {
    const n = Math.min(BATCH, count - sent);
    await queue.addBulk(Array.from({ length: n }, () => ({ name: task, data: {} })));
    sent += n;
  }
  const figures = { enqueue_rate: sent / (mono() - started) };
  try {
    await waitDone(queue, before + count, deadline);
  } catch (err) {  // too slow: the results recorded by then over the time taken, marked partial
    const done = (await queue.getCompletedCount()) - before, seconds = mono() - started;
    return { ...figures, value: done / seconds, seconds, partial: `${done} of ${count}` };
  }
  const seconds = mono() - started;
  return { ...figures, value: count / seconds, seconds };
}

function delaysFor(count, low, high) {
  const step = count % 7919 ? 7919 : 7907;
  return Array.from({ length: count }, (_, i) => low + (high - low) * ((i * step) % count) / Math.max(count - 1, 1));
}

async function delayed(queue, count, timeout, low, high) {
  const before = await queue.getCompletedCount();
  const delays = delaysFor(count, low, high);
  const handles = [];
  for (let sent = 0; sent < count; sent += BATCH) {
    const now = mono();
    const part = delays.slice(sent, sent + BATCH);
    const jobs = await queue.addBulk(part.map((d) => ({ name: "stamp", data: {}, opts: { delay: Math.round(d * 1000) } })));
    jobs.forEach((job, i) => handles.push([job.id, now + Math.round(part[i] * 1000) / 1000]));
  }
  const figures = {};
  try {
    await waitDone(queue, before + count, Math.max(...handles.map(([, due]) => due)) + timeout);
  } catch (err) {  // jobs not started by then count with their lateness at that moment (a lower bound)
    figures.partial = "some jobs had not started by the time limit";
  }
  const now = mono();
  const lateness = [];
  let notStarted = 0;
  for (const [id, due] of handles) {
    const job = await queue.getJob(id);
    const start = job && typeof job.returnvalue === "number" ? job.returnvalue : null;
    if (start === null) notStarted++;
    lateness.push(((start === null ? now : start) - due) * 1e3);
  }
  lateness.sort((a, b) => a - b);
  return { ...figures, p50: percentile(lateness, 50), p99: percentile(lateness, 99), min: lateness[0],
           max: lateness.at(-1), not_started: notStarted };
}

async function single(queue, events, count) {
  const values = [];
  for (let i = 0; i < count; i++) {
    const t0 = mono();
    const job = await queue.add("stamp", {});
    const start = await job.waitUntilFinished(events, 10000);
    values.push((start - t0) * 1e3);
  }
  values.sort((a, b) => a - b);
  return { p50: percentile(values, 50), p99: percentile(values, 99) };
}

async function client(workload, count, timeout, low, high) {
  const queue = new Queue(NAME, { connection });
  const events = new QueueEvents(NAME, { connection });
  await events.waitUntilReady();
  await single(queue, events, WARMUP);
  let figures;
  if (workload === "noop" || workload === "sleep") figures = await drain(queue, workload, count, timeout);
  else if (workload === "delayed") figures = await delayed(queue, count, timeout, low, high);
  else if (workload === "latency") figures = await single(queue, events, count);
  else throw new Error(`unknown workload ${workload}`);
  figures.durability = "Redis (see the server's persistence)";
  console.log(JSON.stringify(figures));
  await events.close();
  await queue.close();
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "worker") worker(args[0]);
else client(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]))
  .then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
