/**
 * Output of `npm run bench`: the results JSON, a text table for the terminal (also Markdown), and an
 * SVG chart written by hand (no charting library): six panels of horizontal bars with goal lines.
 */
import { createHash } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { clientGoals, clientTable, type ClientResults } from './client';
import type { ColdStartRow } from './cold-start';
import type { CostRow } from './cost';
import type { CountingResults } from './counting';
import type { E2eRow } from './e2e';
import type { IngestRow, PostHogHttpRow } from './ingest';
import type { NaiveRow } from './naive';
import type { SoakRow } from './soak';
import { round } from './lib';

export interface Goal {
  goal: string;
  target: string;
  measured: string;
  met: boolean;
  note?: string;
}

export interface BenchResults {
  version: 1;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  machine: {
    cpus: number;
    model: string;
    node: string;
    platform: string;
    loadavgStart: number[];
    loadavgEnd: number[];
    /** {@link speedProbe} at the start and at the end: this shared machine's speed varies. */
    probeStart?: SpeedProbe;
    probeEnd?: SpeedProbe;
  };
  durationsMs: Record<string, number>;
  ingest?: IngestRow[];
  posthogHttp?: PostHogHttpRow[];
  coldStart?: ColdStartRow[];
  counting?: CountingResults;
  e2e?: E2eRow[];
  naive?: NaiveRow[];
  soak?: SoakRow;
  client?: ClientResults;
  cost?: { prices: Record<string, number>; assumptions: Record<string, number>; rows: CostRow[] };
  goals: Goal[];
}

export function machine(): Pick<BenchResults['machine'], 'cpus' | 'model' | 'node' | 'platform'> {
  const c = cpus();
  return { cpus: c.length, model: c[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform}-${process.arch}` };
}
export const load = (): number[] => loadavg().map((v) => round(v, 2));

/** Operations per ms of CPU of two fixed loops (sha256 of 1 KB; JSON round trip of a small object). */
export interface SpeedProbe {
  sha256PerMs: number;
  jsonPerMs: number;
}

/**
 * A fixed amount of work timed in CPU: on a shared (virtual) machine the same code runs at different
 * speeds at different times, so each run says how fast the machine was when it started and ended.
 */
export function speedProbe(): SpeedProbe {
  const buf = Buffer.alloc(1024, 1);
  const obj = { a: [1, 2, 3], b: 'x'.repeat(100), c: { d: 1 } };
  let c0 = process.cpuUsage();
  for (let i = 0; i < 100_000; i++) createHash('sha256').update(buf).digest();
  let c = process.cpuUsage(c0);
  const sha256PerMs = round(100_000 / ((c.user + c.system) / 1000), 0);
  c0 = process.cpuUsage();
  for (let i = 0; i < 200_000; i++) JSON.parse(JSON.stringify(obj));
  c = process.cpuUsage(c0);
  return { sha256PerMs, jsonPerMs: round(200_000 / ((c.user + c.system) / 1000), 0) };
}
const probe = (p?: SpeedProbe): string => (p ? `, speed probe ${p.sha256PerMs} sha256/ms, ${p.jsonPerMs} JSON/ms` : '');

const fmt = (v: number, d = 0): string => v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });

export function evaluateGoals(r: BenchResults): Goal[] {
  const goals: Goal[] = [];
  const ing = (q: string, p: string) => r.ingest?.find((x) => x.queue === q && x.payload === p && !x.auth);
  const sdk1 = ing('sdk', 'single');
  const fast1 = ing('fast', 'single');
  const none1 = ing('none', 'single');
  if (sdk1 && fast1 && none1) {
    goals.push({
      goal: 'Ingest CPU per single-event request, incl. SQS client',
      target: '≤ 250 µs',
      measured: `${fmt(fast1.cpuUsPerRequest)} µs (sqs-json, deployed) · ${fmt(sdk1.cpuUsPerRequest)} µs (SDK v3)`,
      met: fast1.cpuUsPerRequest <= 250,
      note: `handler alone ${fmt(none1.cpuUsPerRequest)} µs; the SDK client adds ${fmt(sdk1.cpuUsPerRequest - none1.cpuUsPerRequest)} µs, sqs-json ${fmt(fast1.cpuUsPerRequest - none1.cpuUsPerRequest)} µs`,
    });
  }
  const proj1 = r.ingest?.find((x) => x.auth === 'projects' && x.payload === 'single');
  if (proj1) {
    goals.push({
      goal: 'Ingest CPU per single-event request, key looked up in DynamoDB (cached), rate limit and quota on',
      target: '≤ 250 µs',
      measured: `${fmt(proj1.cpuUsPerRequest)} µs (sqs-json)`,
      met: proj1.cpuUsPerRequest <= 250,
      note: `interleaved with the same requests under configured keys in memory: ${fmt(proj1.pairedCpuUs ?? 0)} µs; one rate-limit lease (GetItem + conditional UpdateItem) costs ${fmt(proj1.leaseCpuUs ?? 0)} µs and covers ${fmt(proj1.callsPerLease ?? 0)} calls at 20,000 calls/s (a tenth of a second's worth)`,
    });
  }
  const kc = r.ingest?.find((x) => x.payload === 'keycheck');
  if (kc) goals.push({ goal: 'Cached key check (shape, sha256, LRU hit, scope)', target: '≤ 5 µs', measured: `${kc.cpuUsPerRequest} µs`, met: kc.cpuUsPerRequest <= 5 });
  const sdkB = ing('sdk', 'batch100');
  const fastB = ing('fast', 'batch100');
  const noneB = ing('none', 'batch100');
  if (sdkB && fastB && noneB) {
    goals.push({
      goal: 'Ingest CPU per event, batches of 100',
      target: '≤ 5 µs',
      measured: `${fastB.cpuUsPerEvent} µs (sqs-json, deployed) · ${sdkB.cpuUsPerEvent} µs (SDK v3)`,
      met: fastB.cpuUsPerEvent <= 5,
      note: `handler alone ${noneB.cpuUsPerEvent} µs/event (decode, zod, normalise, pack); the rest is the SQS call for a ~26 KB message`,
    });
  }
  const ci = r.coldStart?.find((x) => x.fn === 'ingest');
  const cs = r.coldStart?.find((x) => x.fn === 'ingest + sampling');
  if (ci) {
    const top = ci.topPackages.map((t) => `${t.name} ${fmt(t.bytes / 1024)} KB`).slice(0, 3).join(', ');
    goals.push({
      goal: 'Ingest bundle size (minified), loaded at cold start',
      target: '≤ 250 KB',
      measured: `${fmt(ci.bytes / 1024)} KB`,
      met: ci.bytes <= 250 * 1024,
      note: `largest parts: ${top}; ${fmt(ci.lazyBytes / 1024)} KB more are chunks loaded only when configured (posthog-node for sampling, the AWS SDK for TALLY_AWS_CLIENT=sdk)`,
    });
    goals.push({ goal: 'Ingest module init (import of the bundle)', target: '≤ 80 ms', measured: `${ci.initMs} ms`, met: ci.initMs <= 80 });
  }
  if (cs) {
    goals.push({
      goal: 'Ingest bundle with sampling on (entry + posthog-node chunk)',
      target: '≤ 250 KB, init ≤ 80 ms',
      measured: `${fmt(cs.bytes / 1024)} KB, init ${cs.initMs} ms`,
      met: cs.bytes <= 250 * 1024 && cs.initMs <= 80,
      note: `posthog-node and @posthog/core are ${fmt(cs.topPackages.filter((t) => t.name.includes('posthog')).reduce((n, t) => n + t.bytes, 0) / 1024)} KB of it`,
    });
  }
  const e1 = r.e2e?.find((x) => x.scenario === 'single');
  const eP = r.e2e?.find((x) => x.scenario === 'single-paced');
  if (eP) {
    goals.push({
      goal: '`npm start` defaults (sampling on), single-event requests, end to end (ingest and aggregation keep up)',
      target: '≥ 1,500 requests/s accepted, backlog bounded (≤ 2 s of load at the end), zero loss',
      measured: `${fmt(eP.requestsPerSecond)} requests/s accepted for ${fmt(eP.durationMs / 1000)} s, ${fmt(eP.countedPerSecond)} calls/s counted meanwhile; backlog at the end ${fmt(eP.backlogEndCalls)} calls (${fmt(eP.backlogEndSeconds, 1)} s, max ${fmt(eP.backlogMaxCalls)}), drained ${fmt(eP.drainMs / 1000, 1)} s after; lost ${eP.lost}${e1 ? `; unpaced, ingest answers ${fmt(e1.requestsPerSecond)} requests/s` : ''}`,
      met: eP.requestsPerSecond >= 1500 * 0.99 && eP.backlogEndSeconds <= 2 && eP.lost === 0,
      note: `stack CPU ${fmt(eP.stackCpuUsPerRequest)} µs per request (front, ingest with sampling, poller, aggregator, roll-up; dynalite and fauxqs in worker threads), the load generator on the same 2 cores; ${fmt(eP.endToEndEventsPerSecond)} calls/s counting the drain`,
    });
  }
  const eB = r.e2e?.find((x) => x.scenario === 'batch100');
  if (eB) {
    goals.push({
      goal: '`npm start` defaults (sampling on), batches of 100, end to end',
      target: '≥ 16,700 events/s (1M/minute) accepted, backlog bounded (≤ 2 s of load at the end), zero loss',
      measured: `${fmt(eB.eventsPerSecond)} events/s accepted for ${fmt(eB.durationMs / 1000)} s (p99 ${eB.p99Ms} ms), ${fmt(eB.countedPerSecond)} counted meanwhile; backlog at the end ${fmt(eB.backlogEndCalls)} calls (${fmt(eB.backlogEndSeconds, 1)} s, max ${fmt(eB.backlogMaxCalls)}); lost ${eB.lost}`,
      met: eB.eventsPerSecond >= 16_700 * 0.99 && eB.backlogEndSeconds <= 2 && eB.lost === 0,
      note: `the load is paced at 167 requests/s of 100 events (16,700/s); drained ${fmt(eB.drainMs / 1000, 1)} s after the load stopped; ${fmt(eB.endToEndEventsPerSecond)} events/s counting the drain`,
    });
  }
  const c = r.counting;
  const single = c?.rows.find((x) => x.scenario === 'single' && x.client === 'fast');
  const batched = c?.rows.find((x) => x.scenario === 'batched' && x.client === 'fast');
  if (single) {
    goals.push({
      goal: 'PostHog batch events per 1M calls, 1M calls/minute from 10,000 users (scaled 1:20), 60 s window',
      target: '≤ 10,500, corrections ≤ 5 %',
      measured: `${fmt(single.posthogEventsPer1M)} (${single.correctionsPercent} % corrections); ${single.pairs} active users in ${fmt(single.calls)} calls`,
      met: single.posthogEventsPer1M <= 10_500 && single.correctionsPercent <= 5,
      note: '0.02 % of calls arrive 1–10 minutes late (a client retrying after an outage): each makes a correction event',
    });
    goals.push({
      goal: 'DynamoDB write units per call, single-call requests',
      target: '≤ 1.05',
      measured: `${fmt(single.writeUnitsPer1M / 1e6, 3)} (claims ${fmt(single.writeUnitsByKindPer1M.claims / 1e6, 3)}, counters ${fmt(single.writeUnitsByKindPer1M.counters / 1e6, 4)}, deltas ${fmt(single.writeUnitsByKindPer1M.deltas / 1e6, 4)}, outbox ${fmt(single.writeUnitsByKindPer1M.outbox / 1e6, 4)})`,
      met: single.writeUnitsPer1M / 1e6 <= 1.05,
    });
  }
  if (batched) {
    goals.push({
      goal: 'DynamoDB write units per call, batches of 100',
      target: '≤ 0.05',
      measured: `${fmt(batched.writeUnitsPer1M / 1e6, 4)} (claims ${fmt(batched.writeUnitsByKindPer1M.claims / 1e6, 4)}, counters ${fmt(batched.writeUnitsByKindPer1M.counters / 1e6, 4)})`,
      met: batched.writeUnitsPer1M / 1e6 <= 0.05,
    });
  }
  const nb = r.naive?.find((x) => x.mode === 'b');
  const nt = c?.rows.find((x) => x.scenario === 'naive-traffic');
  if (nb && nt) {
    goals.push({
      goal: 'PostHog events per 1M calls vs the naive in-memory counter flushed every 10 s (same traffic, same run)',
      target: 'fewer, at a 60 s window',
      measured: `tally ${fmt(nt.posthogEventsPer1M)}, naive ${fmt(nb.posthogEventsPer1M)} (${fmt(nb.posthogEventsPer1M / Math.max(1, nt.posthogEventsPer1M), 1)}× more)`,
      met: nt.posthogEventsPer1M < nb.posthogEventsPer1M,
      note: 'naive: measured on its API process at 1,000 calls/s; tally: one 60 s window of the same bodies through the aggregator and the roll-up',
    });
  }
  const costA = r.cost?.rows.find((x) => x.approach === 'tally (HTTP API)' && x.case === 'A');
  const costB = r.cost?.rows.find((x) => x.approach === 'tally (HTTP API)' && x.case === 'B');
  const urlA = r.cost?.rows.find((x) => x.approach === 'tally (Function URL)' && x.case === 'A');
  if (costA && costB) {
    const ph = (row: CostRow) => row.lines.find((l) => l.item === 'PostHog events')?.usd ?? 0;
    goals.push({ goal: 'Cost per 1M calls, all in (incl. logs and PostHog), single-call requests', target: '≤ $2.50', measured: `$${fmt(costA.per1M, 3)} (HTTP API)${urlA ? `, $${fmt(urlA.per1M, 3)} (Function URL)` : ''}`, met: costA.per1M <= 2.5 });
    goals.push({ goal: 'Cost per 1M calls, all in, batches of 100', target: '≤ $0.10', measured: `$${fmt(costB.per1M, 3)}, of which PostHog $${fmt(ph(costB), 3)}`, met: costB.per1M <= 0.1, note: 'PostHog is billed per batch event: one per active user per window, whatever the batching' });
  }
  const out = c?.outage;
  if (out) {
    goals.push({
      goal: 'PostHog down 10 minutes under load (virtual clock, 10 s windows)',
      target: 'counting rate unchanged; largest item unchanged; all delivered after, Σ exact',
      measured: `aggregator ${out.aggregatorMsBefore} → ${out.aggregatorMsDown} ms per window; largest item ${fmt(out.largestItemBefore)} → ${fmt(out.largestItemAfter)} bytes; ${fmt(out.deliveredCalls)} of ${fmt(out.storedCalls)} calls delivered after`,
      met: out.aggregatorMsDown <= out.aggregatorMsBefore * 1.5 + 20 && out.largestItemAfter <= out.largestItemBefore + 64 && out.deliveredCalls === out.storedCalls,
      note: `${out.outboxEntriesAtEnd} outbox entries waited (largest ${fmt(out.largestOutboxEntry)} bytes); the roll-up pass took ${out.rollupMsBefore} → ${out.rollupMsDown} ms while PostHog refused`,
    });
  }
  const cap = c?.capacity;
  if (cap) {
    goals.push({
      goal: 'Roll-up keeps up with 100,000 active pairs per minute',
      target: 'state the parallelism',
      measured: `${fmt(cap.neededWritesPerSecond)} counter writes/s: ${cap.neededShards} shard(s) of 32 writes in flight at 5 ms (8 configured), ${cap.neededVcpu} vCPU of roll-up CPU (the rollup function has 1 vCPU: 1,769 MB)`,
      met: cap.neededShards <= 8 && cap.neededVcpu < 1,
      note: `measured here: ${fmt(cap.counterWrites)} writes for ${fmt(cap.pairs)} pairs in ${fmt(cap.wallMs / 1000, 1)} s (${fmt(cap.writesPerSecond)}/s, dynalite-bound), ${cap.cpuUsPerWrite} µs CPU per write`,
    });
  }
  if (r.soak) {
    const s = r.soak;
    goals.push({
      goal: `Local stack (npm start, its defaults) memory after ${fmt(s.durationMs / 60_000, 0)} minutes of single-event requests offered at ${fmt(s.rate)}/s`,
      target: 'holds steady',
      measured: `${fmt(s.achievedRate ?? 0)} requests/s accepted; RSS ${s.rssStartMb} → ${s.rssHalfMb} MB at half time → ${s.rssEndMb} MB at the end (${s.rssAnonEndMb ?? '?'} anonymous + ${s.rssFileEndMb ?? '?'} file-backed), max ${s.rssMaxMb} through the drain, ${s.rssIdleMb} MB after a minute idle; second half +${s.growthSecondHalfPercent} %`,
      met: s.growthSecondHalfPercent <= 10 && s.lost === 0,
    });
  }
  const na = r.naive?.find((x) => x.mode === 'a');
  if (na && nt) {
    const ratio = na.posthogRequestsPer1M / Math.max(1, nt.posthogRequestsPer1M);
    goals.push({
      goal: 'PostHog requests per 1M calls vs (a) posthog-node per call (same traffic)',
      target: '≥ 100× fewer',
      measured: `${fmt(ratio, 0)}× fewer (tally ${fmt(nt.posthogRequestsPer1M)}, (a) ${fmt(na.posthogRequestsPer1M)} measured)`,
      met: ratio >= 100,
      note: 'tally: one 60 s window of the naive bench\'s traffic through the aggregator and the roll-up, up to 5,000 batch events per PostHog request; (a): measured on its API process at 1,000 calls/s',
    });
  }
  goals.push(...clientGoals(r.client));
  return goals;
}

// ---------------------------------------------------------------------------------------------------
// Text table

function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c, 2) : c)))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: Array<string | number>) => `| ${r.map((c, i) => String(c ?? '').padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

/** The Markdown tables printed at the end of a run and saved as summary.md. */
export function renderTables(r: BenchResults): string {
  const out: string[] = [];
  out.push(`tally benchmark${r.quick ? ' (--quick: harness check, numbers not meaningful)' : ''} — ${r.finishedAt}, ${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, load ${r.machine.loadavgStart.join('/')}${probe(r.machine.probeStart)} at the start${probe(r.machine.probeEnd)} at the end`);
  if (r.goals.length) {
    out.push('\nGoals');
    out.push(table(['goal', 'target', 'measured', 'met'], r.goals.map((g) => [g.goal, g.target, g.measured, g.met ? 'yes' : 'NO'])));
  }
  if (r.ingest) {
    out.push('\n1. Ingest handler, in-process, warm (one request at a time; SQS = fauxqs over HTTP in another process)');
    out.push(table(['payload', 'queue', 'requests', 'CPU µs/request', 'CPU µs/event', 'p50 ms', 'p99 ms'], r.ingest.map((x) => [x.auth ? `${x.payload} + ${x.auth}` : x.payload, x.queue, x.requests, x.cpuUsPerRequest, x.cpuUsPerEvent, x.p50Ms, x.p99Ms])));
  }
  if (r.posthogHttp) {
    out.push('\n1b. PostHog delivery (posthog-node, a client per delivery, gzip) to the stand-in in another process: CPU per delivery by HTTP client');
    out.push(table(['events per delivery', 'deliveries', 'node:http µs (default)', 'global fetch µs (POSTHOG_HTTP=fetch)'], r.posthogHttp.map((x) => [x.events, x.deliveries, x.nodeCpuUs, x.fetchCpuUs])));
  }
  if (r.coldStart) {
    out.push('\n2. Cold start (bundles as lib/build-options.ts builds them; import in a fresh node process, median; KB = what a cold start loads)');
    out.push(
      table(
        ['function', 'KB', 'KB gzip', 'KB on demand', 'import ms', 'first-call init ms', 'largest parts'],
        r.coldStart.map((x) => [x.fn, round(x.bytes / 1024, 0), round(x.gzipBytes / 1024, 0), x.lazyBytes ? round(x.lazyBytes / 1024, 0) : '', x.initMs, x.firstInvokeMs ?? '', x.topPackages.slice(0, 3).map((t) => `${t.name} ${round(t.bytes / 1024, 0)}`).join(', ')]),
      ),
    );
  }
  if (r.counting) {
    const c = r.counting;
    out.push('\n3. Counting: one 60 s window of traffic (aggregator runs, then the roll-up), dynalite + PostHog stand-in in other processes; per 1M calls');
    out.push(
      table(
        ['scenario', 'client', 'users', 'calls', 'msgs', 'runs', 'pairs', 'calls/s', 'CPU µs/call', 'roll-up ms', 'WCU /1M', 'claims', 'deltas', 'markers', 'counters', 'outbox', 'state', 'RCU /1M', 'PostHog events /1M', 'corrections %', 'PostHog req /1M'],
        c.rows.map((x) => [x.scenario, x.client, x.users, x.calls, x.messages, x.runs, x.pairs, x.eventsPerSecond, x.cpuUsPerCall, x.rollupMs, x.writeUnitsPer1M, x.writeUnitsByKindPer1M.claims, x.writeUnitsByKindPer1M.deltas, x.writeUnitsByKindPer1M.markers, x.writeUnitsByKindPer1M.counters, x.writeUnitsByKindPer1M.outbox, x.writeUnitsByKindPer1M.state, x.readUnitsPer1M, x.posthogEventsPer1M, x.correctionsPercent, x.posthogRequestsPer1M]),
      ),
    );
    out.push('\n3b. Roll-up capacity (synthetic window)');
    out.push(table(['pairs', 'counter writes', 'wall ms', 'writes/s here', 'CPU µs/write', '100k pairs/min: writes/s', 'vCPU', 'shards'], [[c.capacity.pairs, c.capacity.counterWrites, c.capacity.wallMs, c.capacity.writesPerSecond, c.capacity.cpuUsPerWrite, c.capacity.neededWritesPerSecond, c.capacity.neededVcpu, c.capacity.neededShards]]));
    const o = c.outage;
    out.push(`\n3c. PostHog down for ${o.windows.down} windows of ${o.windowSeconds} s (after ${o.windows.before} up), ${o.callsPerWindow} calls per window`);
    out.push(
      table(
        ['aggregator ms/window before', 'during', 'roll-up ms before', 'during', 'largest item before', 'after', 'largest outbox entry', 'entries waiting', 'recovery passes', 'delivered', 'stored'],
        [[o.aggregatorMsBefore, o.aggregatorMsDown, o.rollupMsBefore, o.rollupMsDown, o.largestItemBefore, o.largestItemAfter, o.largestOutboxEntry, o.outboxEntriesAtEnd, o.recoveryPasses, o.deliveredCalls, o.storedCalls]],
      ),
    );
    out.push('\n3d. Active pairs per 60 s window at 1M calls/minute, by number of users (Zipf 1.1, pure computation)');
    out.push(table(['users', 'calls/window', 'active pairs', 'PostHog events /1M', 'counter writes /1M', 'claims /1M (single-call)'], c.skew.map((x) => [x.users, x.callsPerWindow, x.pairs, x.posthogEventsPer1M, x.counterWritesPer1M, x.claimsPer1M])));
  }
  if (r.e2e) {
    out.push('\n4. End to end on the local stack (npm start\'s stack and defaults, sampling on, in a child process; batch events to a PostHog stand-in)');
    out.push(
      table(
        ['scenario', 's', 'req/s', 'events/s', 'p50 ms', 'p90 ms', 'p99 ms', 'failed', 'counted/s during load', 'backlog at end (s of load)', 'backlog max', 'drain s', 'end-to-end events/s incl. drain', 'acknowledged', 'stored', 'PostHog calls', 'lost', 'stack CPU µs/req'],
        r.e2e.map((x) => [`${x.scenario}${x.targetRate ? ` @${x.targetRate}/s` : ''}`, round(x.durationMs / 1000, 0), x.requestsPerSecond, x.eventsPerSecond, x.p50Ms, x.p90Ms, x.p99Ms, x.failed, x.countedPerSecond ?? '', x.backlogEndCalls !== undefined ? `${x.backlogEndCalls} (${x.backlogEndSeconds})` : '', x.backlogMaxCalls ?? '', round(x.drainMs / 1000, 1), x.endToEndEventsPerSecond, x.acknowledged, x.stored, x.posthogCalls, x.lost, x.stackCpuUsPerRequest]),
      ),
    );
  }
  if (r.naive) {
    out.push('\n5. Against the naive approaches (paced calls; kill -9 of the process holding the tracking state)');
    out.push(
      table(
        ['approach', 'calls/s', 'CPU µs/call (API process)', 'PostHog requests /1M', 'PostHog events /1M', 'acknowledged', 'reached', 'lost on kill -9'],
        r.naive.map((x) => [x.label, x.rate, x.cpuUsPerCall, x.posthogRequestsPer1M, x.posthogEventsPer1M, x.acknowledged, x.reached, x.mode === 'none' ? '' : `${x.lost} (${x.lostPercent} %)`]),
      ),
    );
  }
  if (r.soak) {
    const k = r.soak;
    out.push(`\n6. Memory under sustained load (npm start's defaults, single-event requests offered at ${k.rate}/s for ${k.durationMs / 1000} s)`);
    out.push(table(['requests', 'accepted/s', 'failed', 'lost', 'drain s', 'RSS start MB', 'half', 'end', 'end: anonymous + file-backed', 'max (incl. drain, idle)', 'idle', 'second half %'], [[k.requests, k.achievedRate ?? '', k.failed, k.lost, k.drainMs !== undefined ? round(k.drainMs / 1000, 1) : '', k.rssStartMb, k.rssHalfMb, k.rssEndMb, k.rssAnonEndMb !== undefined ? `${k.rssAnonEndMb} + ${k.rssFileEndMb}` : '', k.rssMaxMb, k.rssIdleMb, k.growthSecondHalfPercent]]));
  }
  if (r.client) out.push(clientTable(r.client, table));
  if (r.cost) {
    out.push('\n8. Cost per 1M tracked calls (USD, us-east-1 list prices; month = 1M calls/minute × 30 days)');
    out.push(table(['approach', 'case', 'calls/request', 'per 1M calls', 'per month'], r.cost.rows.map((x) => [x.approach, x.case, x.callsPerRequest, `$${fmt(x.per1M, 3)}`, `$${fmt(x.perMonthAt1MPerMinute)}`])));
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// SVG chart

interface Bar {
  label: string;
  value: number;
  color: string;
  text?: string;
}
interface Panel {
  title: string;
  bars: Bar[];
  goal?: { value: number; label: string };
  log?: boolean;
  unit: string;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const C = { tally: '#1f77b4', fast: '#2ca02c', naive: '#d62728', other: '#7f7f7f', base: '#bcbd22' };

function panelSvg(p: Panel, x: number, y: number, w: number, h: number): string {
  const labelW = 205;
  const plotX = x + labelW;
  const plotW = w - labelW - 125;
  const barH = Math.min(26, (h - 50) / Math.max(1, p.bars.length) - 6);
  const max = Math.max(...p.bars.map((b) => b.value), p.goal?.value ?? 0, p.log ? 10 : 1e-9);
  const scale = (v: number): number => {
    if (!p.log) return (v / max) * plotW;
    const lo = 0;
    const hi = Math.log10(max * 1.2);
    return v <= 1 ? 0 : ((Math.log10(v) - lo) / (hi - lo)) * plotW;
  };
  const parts: string[] = [];
  parts.push(`<text x="${x}" y="${y + 16}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  p.bars.forEach((b, i) => {
    const by = y + 34 + i * (barH + 6);
    const bw = Math.max(1, scale(b.value));
    parts.push(`<text x="${plotX - 6}" y="${by + barH / 2 + 4}" font-size="11" text-anchor="end">${esc(b.label)}</text>`);
    parts.push(`<rect x="${plotX}" y="${by}" width="${bw.toFixed(1)}" height="${barH}" fill="${b.color}"/>`);
    parts.push(`<text x="${plotX + bw + 4}" y="${by + barH / 2 + 4}" font-size="11">${esc(b.text ?? `${fmt(b.value, b.value < 10 ? 2 : 0)} ${p.unit}`)}</text>`);
  });
  if (p.goal) {
    const gx = plotX + scale(p.goal.value);
    const bottom = y + 34 + p.bars.length * (barH + 6);
    parts.push(`<line x1="${gx.toFixed(1)}" y1="${y + 26}" x2="${gx.toFixed(1)}" y2="${bottom}" stroke="#000" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${gx.toFixed(1)}" y="${bottom + 12}" font-size="10" text-anchor="middle">${esc(p.goal.label)}</text>`);
  }
  if (p.log) parts.push(`<text x="${x + w - 10}" y="${y + 16}" font-size="10" text-anchor="end" fill="#555">log scale</text>`);
  return parts.join('\n');
}

export function renderSvg(r: BenchResults): string {
  const panels: Panel[] = [];
  const ing = (q: string, p: string) => r.ingest?.find((x) => x.queue === q && x.payload === p && !x.auth);
  if (r.ingest) {
    panels.push({
      title: '1. Ingest CPU per single-event request',
      unit: 'µs',
      goal: { value: 250, label: 'goal 250 µs' },
      bars: [
        { label: 'handler only (no I/O)', value: ing('none', 'single')?.cpuUsPerRequest ?? 0, color: C.base },
        { label: '+ SDK v3 SQS client', value: ing('sdk', 'single')?.cpuUsPerRequest ?? 0, color: C.tally },
        { label: '+ sqs-json client', value: ing('fast', 'single')?.cpuUsPerRequest ?? 0, color: C.fast },
      ],
    });
    panels.push({
      title: '1. Ingest CPU per event, batches of 100',
      unit: 'µs',
      goal: { value: 5, label: 'goal 5 µs' },
      bars: [
        { label: 'handler only (no I/O)', value: ing('none', 'batch100')?.cpuUsPerEvent ?? 0, color: C.base },
        { label: '+ SDK v3 SQS client', value: ing('sdk', 'batch100')?.cpuUsPerEvent ?? 0, color: C.tally },
        { label: '+ sqs-json client', value: ing('fast', 'batch100')?.cpuUsPerEvent ?? 0, color: C.fast },
        { label: 'PostHog /batch gzip, SDK', value: ing('sdk', 'posthog100')?.cpuUsPerEvent ?? 0, color: C.tally },
        { label: 'PostHog /batch gzip, fast', value: ing('fast', 'posthog100')?.cpuUsPerEvent ?? 0, color: C.fast },
      ],
    });
  }
  if (r.coldStart) {
    panels.push({
      title: '2. Bundle size (minified)',
      unit: 'KB',
      goal: { value: 250, label: 'ingest goal 250 KB' },
      bars: r.coldStart.map((c) => ({ label: c.fn, value: c.bytes / 1024, color: c.fn.includes('fast') ? C.fast : C.tally, text: `${fmt(c.bytes / 1024)} KB, init ${c.initMs} ms` })),
    });
  }
  if (r.e2e) {
    const s = r.e2e.find((x) => x.scenario === 'single');
    const p = r.e2e.find((x) => x.scenario === 'single-paced');
    const b = r.e2e.find((x) => x.scenario === 'batch100');
    panels.push({
      title: '4. npm start defaults: throughput, zero loss',
      unit: '/s',
      log: true,
      bars: [
        ...(s ? [{ label: 'single, unpaced: requests/s', value: s.requestsPerSecond, color: C.tally }] : []),
        ...(p ? [{ label: 'single @1,500/s: end to end', value: p.endToEndEventsPerSecond, color: C.fast }] : []),
        ...(b ? [{ label: 'batch 100: events/s accepted', value: b.eventsPerSecond, color: C.tally }, { label: 'batch 100: end to end', value: b.endToEndEventsPerSecond, color: C.fast }] : []),
        { label: 'goal: single end to end', value: 1500, color: '#dddddd' },
        { label: 'goal: 1M/min events/s', value: 16_700, color: '#dddddd' },
      ],
    });
  }
  const c = r.counting;
  const single = c?.rows.find((x) => x.scenario === 'single' && x.client === 'fast');
  const batched = c?.rows.find((x) => x.scenario === 'batched' && x.client === 'fast');
  const nt = c?.rows.find((x) => x.scenario === 'naive-traffic');
  if (c) {
    panels.push({
      title: '3. DynamoDB write units per call',
      unit: 'WCU',
      goal: { value: 1.05, label: 'goal single 1.05' },
      bars: [
        ...(single ? [{ label: 'single-call requests', value: single.writeUnitsPer1M / 1e6, color: C.tally, text: `${fmt(single.writeUnitsPer1M / 1e6, 3)} (claims ${fmt(single.writeUnitsByKindPer1M.claims / 1e6, 3)})` }] : []),
        ...(batched ? [{ label: 'batches of 100 (goal 0.05)', value: batched.writeUnitsPer1M / 1e6, color: C.fast, text: fmt(batched.writeUnitsPer1M / 1e6, 4) }] : []),
        { label: 'before counting v2 (single)', value: 3.09, color: C.other, text: '3.09 (measured on the old design)' },
      ],
    });
  }
  if (r.naive || c) {
    const nb = r.naive?.find((x) => x.mode === 'b');
    panels.push({
      title: '5. PostHog events per 1M calls',
      unit: '',
      log: true,
      bars: [
        { label: '(a) one event per call', value: 1e6, color: C.naive, text: '1M' },
        ...(nb ? [{ label: '(b) counts every 10 s', value: nb.posthogEventsPer1M, color: C.naive }] : []),
        ...(nt ? [{ label: 'tally, same traffic, 60 s', value: nt.posthogEventsPer1M, color: C.tally }] : []),
        ...(single ? [{ label: 'tally, 1M/min from 10k users', value: single.posthogEventsPer1M, color: C.tally }] : []),
      ],
    });
  }
  if (r.naive) {
    panels.push({
      title: '5. Acknowledged calls lost on kill -9',
      unit: '%',
      bars: r.naive
        .filter((x) => x.mode !== 'none')
        .map((x) => ({ label: x.mode === 'tally' ? 'tally' : x.mode === 'a' ? '(a) posthog-node, flushAt 1' : '(b) counts flushed every 10 s', value: x.lostPercent, color: x.mode === 'tally' ? C.tally : C.naive, text: `${x.lost} of ${fmt(x.acknowledged)} (${x.lostPercent} %)` })),
    });
  }
  if (r.cost) {
    const pick = r.cost.rows.filter((x) => (x.approach.startsWith('tally') && !x.approach.includes('access logs')) || x.approach.includes('high-volume'));
    panels.push({
      title: '6. Cost per 1M tracked calls (USD)',
      unit: '$',
      bars: pick.map((x) => ({
        label: `${x.approach.replace(', one event per call (high-volume rate)', ' per event')}${x.approach.startsWith('PostHog') ? '' : x.case === 'A' ? ', 1 call/req' : `, ${x.callsPerRequest}/req`}`,
        value: x.per1M,
        color: x.approach.startsWith('tally') ? C.tally : x.approach.startsWith('PostHog') ? C.naive : C.other,
        text: `$${fmt(x.per1M, 2)}`,
      })),
    });
  }
  const colW = 560;
  const rowH = 240;
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const W = colW * cols + 20;
  const H = rows * rowH + 60;
  const body = panels.map((p, i) => panelSvg(p, 10 + (i % cols) * colW, 50 + Math.floor(i / cols) * rowH, colW - 20, rowH - 20)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="24" font-size="17" font-weight="bold">tally — npm run bench${r.quick ? ' --quick (harness check only)' : ''}</text>`,
    `<text x="10" y="42" font-size="11" fill="#555">${esc(`${r.finishedAt} · ${r.machine.cpus} × ${r.machine.model} · Node ${r.machine.node} · load ${r.machine.loadavgStart.join('/')}`)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}
