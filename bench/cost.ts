/**
 * Benchmark 7: cost per 1M tracked calls on AWS, all in (API, Lambda, SQS, DynamoDB, CloudWatch Logs,
 * PostHog), from what the other benchmarks measured and list prices (us-east-1, shared/notes/aws-facts.md;
 * PostHog's published per-event tiers). Pure arithmetic: every input is in the returned JSON.
 *
 * Traffic: 1M calls per minute from 10,000 users; case A one call per HTTP request, case B 100 calls per
 * request (a batching client such as @tally/client). The counting figures come from bench/counting.ts's
 * window at that ratio (100 calls per user per window).
 */
import type { AggregatorRow } from './counting';
import type { IngestRow } from './ingest';
import { DEDUPE_TTL_DAYS } from '../lib/sizing';
import { round } from './lib';

export const PRICES = {
  httpApiPerM: 1.0,
  lambdaRequestPerM: 0.2,
  lambdaArmGbSecond: 0.0000133334,
  sqsRequestPerM: 0.4,
  dynamoWriteUnitPerM: 0.625,
  dynamoReadUnitPerM: 0.125,
  cloudwatchLogsPerGb: 0.5,
  /** PostHog product analytics, per event, marginal rate above 250M events/month (1M calls/minute is 43.2B/month). */
  posthogPerEventHighVolume: 0.000009,
  /** DynamoDB Standard storage, and continuous backups (point-in-time recovery, on in lib/storage.ts), per GB-month. */
  dynamoStoragePerGbMonth: 0.25,
  dynamoPitrPerGbMonth: 0.2,
  /** PostHog's first paid tier (1–2M events/month), for a small user. */
  posthogPerEventFirstTier: 0.00005,
} as const;

/** Assumptions that are not measured here; each is named in the output. */
export const ASSUMPTIONS = {
  ingestMemoryMb: 512,
  aggregatorMemoryMb: 1024,
  rollupMemoryMb: 1769,
  /** Lambda CPU share: memory / 1,769 MB per vCPU. */
  mbPerVcpu: 1769,
  /** In-Region SQS SendMessageBatch round trip, ms (not measurable here: fauxqs answers in ~0.3 ms). */
  sqsRoundTripMs: 8,
  /** In-Region DynamoDB write round trip, ms, with 32 in flight. */
  dynamoWriteMs: 5,
  dynamoConcurrency: 32,
  /** Messages per aggregator invocation: the event source's batch size, unless 6 MB of records is reached first. */
  batchMessages: 10_000,
  invocationPayloadBytes: 6 * 1024 * 1024,
  recordOverheadBytes: 1024,
  /** SQS: the event source receives and deletes in calls of 10 messages. */
  messagesPerReceive: 10,
  /**
   * CloudWatch Logs bytes as deployed (lib/tally-function.ts: JSON logs, system log level WARN, so no
   * START/END/REPORT lines; Powertools at INFO): a successful ingest request logs nothing and emits no
   * EMF; an aggregator invocation logs one INFO line and one EMF blob; a roll-up invocation the same.
   */
  ingestLogBytesPerRequest: 0,
  aggregatorLogBytesPerInvocation: 1500,
  rollupLogBytesPerInvocation: 1500,
  /** API Gateway access logs, when turned on (off by default): one JSON line per request. */
  accessLogBytesPerRequest: 450,
  /** Roll-up invocations per 1M calls: one per minute, at 1M calls per minute. */
  rollupInvocationsPer1M: 1,
  /**
   * Days a claim is stored: TALLY_DEDUPE_TTL_DAYS as the stack sets it (lib/sizing.ts: DLQ retention +
   * queue retention + 1 = 19), plus the time DynamoDB's TTL takes to delete an expired item (typically
   * within a few days; 2 assumed).
   */
  claimStoredDays: DEDUPE_TTL_DAYS + 2,
  /** Days a per-minute counter item is stored (TALLY_MINUTE_TTL_DAYS 14 + 2 for TTL deletion). */
  counterStoredDays: 16,
  /** Bytes of a counter item, incl. DynamoDB's 100 per item (a minute counter: key, n, high-water mark). */
  counterItemBytes: 180,
};

export interface CostLine {
  item: string;
  usd: number;
  how: string;
}

export interface CostRow {
  approach: string;
  case: 'A' | 'B';
  callsPerRequest: number;
  lines: CostLine[];
  per1M: number;
  /** At 1M calls/minute for a 30-day month (43.2 billion calls). */
  perMonthAt1MPerMinute: number;
}

const MONTH_CALLS = 1e6 * 60 * 24 * 30;

function lambdaUsd(invocations: number, msEach: number, memoryMb: number): { requests: number; duration: number; billedMs: number } {
  const billedMs = Math.max(1, Math.ceil(msEach));
  return {
    requests: (invocations / 1e6) * PRICES.lambdaRequestPerM,
    duration: invocations * (billedMs / 1000) * (memoryMb / 1024) * PRICES.lambdaArmGbSecond,
    billedMs,
  };
}

export interface CostInputs {
  ingest: IngestRow[];
  counting: AggregatorRow[];
}

type FrontDoor = 'http-api' | 'function-url';

export function computeCosts(inp: CostInputs): CostRow[] {
  const a = ASSUMPTIONS;
  const rows: CostRow[] = [];
  const vIngest = a.ingestMemoryMb / a.mbPerVcpu;
  const vAgg = a.aggregatorMemoryMb / a.mbPerVcpu;
  const vRoll = a.rollupMemoryMb / a.mbPerVcpu;
  const logUsd = (bytes: number) => (bytes / 1024 ** 3) * PRICES.cloudwatchLogsPerGb;
  for (const front of ['http-api', 'function-url'] as FrontDoor[]) {
    for (const [c, per] of [
      ['A', 1],
      ['B', 100],
    ] as const) {
      const ing = inp.ingest.find((r) => r.queue === 'fast' && r.payload === (per === 1 ? 'single' : 'batch100'));
      const cnt = inp.counting.find((r) => r.scenario === (per === 1 ? 'single' : 'batched') && r.client === 'fast');
      if (!ing || !cnt) continue;
      const requests = 1e6 / per;
      const messages = requests; // one SQS message per request (a request's events fit in one 1 MiB message)
      const ingestMs = ing.cpuUsPerRequest / 1000 / vIngest + a.sqsRoundTripMs;
      const li = lambdaUsd(requests, ingestMs, a.ingestMemoryMb);
      const perInvocation = Math.min(a.batchMessages, Math.floor(a.invocationPayloadBytes / (cnt.avgBodyBytes + a.recordOverheadBytes)));
      const invocations = Math.max(1, messages / perInvocation);
      const callsPerInvocation = 1e6 / invocations;
      const aggCpuMs = (cnt.cpuUsPerCall * callsPerInvocation) / 1000 / vAgg;
      const aggIoMs = (perInvocation * a.dynamoWriteMs) / a.dynamoConcurrency; // the claims dominate its writes
      const la = lambdaUsd(invocations, aggCpuMs + aggIoMs, a.aggregatorMemoryMb);
      const counterWritesPer1M = cnt.writeUnitsByKindPer1M.counters;
      const rollMs = (cnt.rollupCpuUsPerCall * 1e6) / 1000 / vRoll + (counterWritesPer1M * a.dynamoWriteMs) / (a.dynamoConcurrency * 4);
      const lr = lambdaUsd(a.rollupInvocationsPer1M, rollMs, a.rollupMemoryMb);
      const sqsRequests = messages + (2 * messages) / a.messagesPerReceive;
      // Storage, per 1M calls: each message's claim for its retention; counters as an upper bound (every
      // counter write a new item kept as long as a minute item; hour, day and month items are rewritten).
      const gbMonth = (items: number, bytes: number, days: number) => ((items * bytes) / 1e9) * (days / 30);
      const storageGbMonths = gbMonth(messages, cnt.claimItemBytes, a.claimStoredDays) + gbMonth(counterWritesPer1M, a.counterItemBytes, a.counterStoredDays);
      const logBytes = requests * a.ingestLogBytesPerRequest + invocations * a.aggregatorLogBytesPerInvocation + a.rollupInvocationsPer1M * a.rollupLogBytesPerInvocation;
      const lines: CostLine[] = [
        front === 'http-api'
          ? { item: 'API Gateway HTTP API', usd: (requests / 1e6) * PRICES.httpApiPerM, how: `${requests} requests × $${PRICES.httpApiPerM}/M` }
          : { item: 'Lambda Function URL', usd: 0, how: 'no charge beyond the ingest invocation' },
        { item: 'Lambda ingest requests', usd: li.requests, how: `${requests} × $0.20/M` },
        {
          item: 'Lambda ingest duration',
          usd: li.duration,
          how: `${requests} × ${li.billedMs} ms billed (${round(ing.cpuUsPerRequest, 0)} µs CPU measured ÷ ${round(vIngest, 2)} vCPU + ${a.sqsRoundTripMs} ms SQS) × ${a.ingestMemoryMb / 1024} GB`,
        },
        { item: 'SQS send + receive + delete', usd: (sqsRequests / 1e6) * PRICES.sqsRequestPerM, how: `${round(sqsRequests, 0)} requests (${messages} sends, receives/deletes by 10) × $0.40/M` },
        {
          item: 'Lambda aggregator',
          usd: la.requests + la.duration,
          how: `${round(invocations, 1)} invocations of ≤ ${perInvocation} messages × ${la.billedMs} ms (${cnt.cpuUsPerCall} µs CPU/call measured ÷ ${round(vAgg, 2)} vCPU + claims × ${a.dynamoWriteMs} ms ÷ ${a.dynamoConcurrency}) × 1 GB`,
        },
        { item: 'Lambda roll-up', usd: lr.requests + lr.duration, how: `${a.rollupInvocationsPer1M} invocation(s) × ${lr.billedMs} ms (${cnt.rollupCpuUsPerCall} µs CPU/call measured + ${round(counterWritesPer1M, 0)} counter writes × ${a.dynamoWriteMs} ms ÷ ${a.dynamoConcurrency * 4}) × 1.73 GB` },
        { item: 'DynamoDB writes', usd: (cnt.writeUnitsPer1M / 1e6) * PRICES.dynamoWriteUnitPerM, how: `${cnt.writeUnitsPer1M} write units measured × $0.625/M (claims ${cnt.writeUnitsByKindPer1M.claims}, counters ${counterWritesPer1M}, the rest ${round(cnt.writeUnitsPer1M - cnt.writeUnitsByKindPer1M.claims - counterWritesPer1M, 0)})` },
        { item: 'DynamoDB reads', usd: (cnt.readUnitsPer1M / 1e6) * PRICES.dynamoReadUnitPerM, how: `${cnt.readUnitsPer1M} read units measured × $0.125/M` },
        {
          item: 'DynamoDB storage + backups',
          usd: storageGbMonths * (PRICES.dynamoStoragePerGbMonth + PRICES.dynamoPitrPerGbMonth),
          how: `${round(storageGbMonths * 1000, 2)} MB-months: ${messages} claims × ${cnt.claimItemBytes} B measured × ${a.claimStoredDays} days + ≤ ${round(counterWritesPer1M, 0)} counter items × ${a.counterItemBytes} B × ${a.counterStoredDays} days; × $${PRICES.dynamoStoragePerGbMonth + PRICES.dynamoPitrPerGbMonth}/GB-month (storage + point-in-time recovery)`,
        },
        { item: 'CloudWatch Logs', usd: logUsd(logBytes), how: `${round(logBytes / 1024, 0)} KB (ingest ${a.ingestLogBytesPerRequest} B/request, aggregator and roll-up ${a.aggregatorLogBytesPerInvocation} B/invocation) × $0.50/GB` },
        { item: 'PostHog events', usd: cnt.posthogEventsPer1M * PRICES.posthogPerEventHighVolume, how: `${cnt.posthogEventsPer1M} batch events measured × $${PRICES.posthogPerEventHighVolume}` },
      ];
      const per1M = lines.reduce((s, l) => s + l.usd, 0);
      rows.push({
        approach: `tally (${front === 'http-api' ? 'HTTP API' : 'Function URL'})`,
        case: c,
        callsPerRequest: per,
        lines: lines.map((l) => ({ ...l, usd: round(l.usd, 4) })),
        per1M: round(per1M, 3),
        perMonthAt1MPerMinute: round((per1M * MONTH_CALLS) / 1e6, 0),
      });
      if (front === 'http-api' && c === 'A') {
        const access = requests * a.accessLogBytesPerRequest;
        const withAccess = per1M + logUsd(access);
        rows.push({
          approach: 'tally (HTTP API, access logs on)',
          case: c,
          callsPerRequest: per,
          lines: [{ item: 'API Gateway access logs', usd: round(logUsd(access), 4), how: `${requests} × ${a.accessLogBytesPerRequest} B × $0.50/GB, on top of the row above` }],
          per1M: round(withAccess, 3),
          perMonthAt1MPerMinute: round((withAccess * MONTH_CALLS) / 1e6, 0),
        });
      }
    }
  }
  // PostHog per event: every call an event, at the high-volume and the first paid tier.
  for (const [label, price] of [
    ['PostHog, one event per call (high-volume rate)', PRICES.posthogPerEventHighVolume],
    ['PostHog, one event per call (first paid tier)', PRICES.posthogPerEventFirstTier],
  ] as const) {
    const usd = 1e6 * price;
    rows.push({ approach: label, case: 'A', callsPerRequest: 1, lines: [{ item: 'PostHog events', usd, how: `1,000,000 events × $${price}` }], per1M: round(usd, 3), perMonthAt1MPerMinute: round((usd * MONTH_CALLS) / 1e6, 0) });
  }
  return rows;
}
