// The peer queue of Galaxy's store benchmark: graphile-worker (a batched Postgres job
// queue: a local queue of fetched jobs, batched completion) draining no-op jobs, timed
// from the start of the worker to the moment its jobs table is empty. Run by
// `scripts/store_bench.sh --graphile` on the same throwaway cluster (fsync on) as the
// Rust benchmark, right after it; see docs/benchmarks.md.
//
//   DATABASE_URL=postgres://... [JOBS=10000] [ROUNDS=3] [CONCURRENCY=1,4,16] [BATCH=100] node bench.js
const { run, makeWorkerUtils } = require("graphile-worker");
const { Pool } = require("pg");

const connectionString = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS || 10000);
const rounds = Number(process.env.ROUNDS || 3);
const batch = Number(process.env.BATCH || 100);
const concurrencies = (process.env.CONCURRENCY || "1,4,16").split(",").map(Number);
const version = require("graphile-worker/package.json").version;

/** Queues `jobs` no-op jobs in one statement (untimed). */
async function seed(pool) {
  await pool.query(
    "SELECT graphile_worker.add_jobs(ARRAY(SELECT ROW('noop', json_build_object('n', g), " +
      "NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec " +
      "FROM generate_series(1, $1) g))",
    [jobs],
  );
}

async function remaining(pool) {
  const { rows } = await pool.query(
    "SELECT count(*)::int AS n FROM graphile_worker._private_jobs",
  );
  return rows[0].n;
}

/** Drains one seeded queue with `concurrency` jobs at a time; returns seconds. */
async function drain(pool, concurrency) {
  await seed(pool);
  let done = 0;
  let allRun;
  const ran = new Promise((resolve) => (allRun = resolve));
  const started = process.hrtime.bigint();
  const runner = await run({
    connectionString,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quiet,
    preset: {
      worker: {
        localQueue: { size: batch },
        completeJobBatchDelay: 0,
        maxPoolSize: concurrency + 4,
      },
    },
    taskList: {
      noop: async () => {
        done += 1;
        if (done === jobs) allRun();
      },
    },
  });
  await ran;
  // Completion is batched: the drain ends when the completed jobs are gone.
  while ((await remaining(pool)) > 0) await new Promise((r) => setTimeout(r, 1));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();
  return secs;
}

const { Logger } = require("graphile-worker");
const quiet = new Logger(() => () => {});

async function main() {
  const pool = new Pool({ connectionString, max: 4 });
  pool.on("error", (e) => console.error("pool:", e.message));
  pool.on("connect", (client) => client.on("error", (e) => console.error("client:", e.message)));
  const utils = await makeWorkerUtils({ pgPool: pool, logger: quiet });
  await utils.migrate();
  // One untimed drain first: Node compiles the worker's code paths on first use.
  await drain(pool, 1);
  const name = `graphile-worker ${version} (local queue ${batch}, batched completion)`;
  const results = [];
  for (const concurrency of concurrencies) {
    let secs = 0;
    for (let round = 0; round < rounds; round++) secs += await drain(pool, concurrency);
    const items = jobs * rounds;
    results.push({ scenario: name, concurrency, items, seconds: secs, items_per_second: items / secs });
    console.log(`| ${name} | ${concurrency} | ${items} | ${secs.toFixed(2)} | ${(items / secs).toFixed(0)} |`);
  }
  if (process.env.JSON) require("fs").writeFileSync(process.env.JSON, JSON.stringify(results));
  await utils.release();
  await pool.end();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
