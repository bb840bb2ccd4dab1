/**
 * Benchmark 6: cost per 1M tracked calls on AWS, from the durations and counts measured by the other
 * benchmarks and list prices (us-east-1, shared/notes/aws-facts.md; PostHog's published per-event
 * tiers). Pure arithmetic: every input is in the returned JSON so a reader can redo it.
 *
 * Case A: one call per HTTP request. Case B: 100 calls per request (a batching client).
 */
import type { AggregatorRow } from './aggregator';
import type { IngestRow } from './ingest';
import { round } from './lib';

export const PRICES = {
  httpApiPerM: 1.0,
  lambdaRequestPerM: 0.2,
  lambdaArmGbSecond: 0.0000133334,
  sqsRequestPerM: 0.4,
  dynamoWriteUnitPerM: 0.625,
  dynamoReadUnitPerM: 0.125,
  /** PostHog product analytics, per event, marginal rate above 250M events/month (1M calls/minute is 43.2B/month). */
  posthogPerEventHighVolume: 0.000009,
  /** PostHog's first paid tier (1–2M events/month), for a small user. */
  posthogPerEventFirstTier: 0.00005,
} as const;

/** Assumptions that are not measured here; each is named in the output. */
export const ASSUMPTIONS = {
  ingestMemoryMb: 512,
  aggregatorMemoryMb: 1024,
  /** Lambda CPU share: memory / 1,769 MB per vCPU. */
  mbPerVcpu: 1769,
  /** In-Region SQS SendMessageBatch round trip, ms (not measurable here: fauxqs answers in ~0.3 ms). */
  sqsRoundTripMs: 8,
  /** In-Region DynamoDB write round trip, ms, with 32 in flight per aggregator run. */
  dynamoWriteMs: 5,
  dynamoConcurrency: 32,
  /** Messages per aggregator invocation: the event source's batch size, unless 6 MB of records is reached first. */
  batchMessages: 10_000,
  /** Lambda's invocation payload limit, and what each SQS record adds to its body in the event JSON. */
  invocationPayloadBytes: 6 * 1024 * 1024,
  recordOverheadBytes: 1024,
  /** SQS: the event source receives and deletes in calls of 10 messages. */
  messagesPerReceive: 10,
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
  aggregator: AggregatorRow[];
  /** PostHog events per 1M calls for (a) = 1M (each call is an event). */
}

export function computeCosts(inp: CostInputs, queue: 'sdk' | 'fast' = 'sdk'): CostRow[] {
  const a = ASSUMPTIONS;
  const rows: CostRow[] = [];
  const vIngest = a.ingestMemoryMb / a.mbPerVcpu;
  const vAgg = a.aggregatorMemoryMb / a.mbPerVcpu;
  for (const [c, per] of [
    ['A', 1],
    ['B', 100],
  ] as const) {
    const ing = inp.ingest.find((r) => r.queue === queue && r.payload === (per === 1 ? 'single' : 'batch100'));
    const agg = inp.aggregator.find((r) => r.scenario === (per === 1 ? 'single' : 'batched') && r.client !== 'sdk');
    if (!ing || !agg) continue;
    const requests = 1e6 / per;
    const messages = requests; // one SQS message per request (a request's events fit in one 1 MiB message)
    const ingestMs = ing.cpuUsPerRequest / 1000 / vIngest + a.sqsRoundTripMs;
    const li = lambdaUsd(requests, ingestMs, a.ingestMemoryMb);
    const perInvocation = Math.min(a.batchMessages, Math.floor(a.invocationPayloadBytes / ((agg.avgBodyBytes ?? 400) + a.recordOverheadBytes)));
    const invocations = Math.max(1, messages / perInvocation);
    const callsPerInvocation = 1e6 / invocations;
    const aggCpuMs = (agg.cpuUsPerCall * callsPerInvocation) / 1000 / vAgg;
    const aggIoMs = ((agg.dynamoWritesPer1M / invocations) * a.dynamoWriteMs) / a.dynamoConcurrency;
    const la = lambdaUsd(invocations, aggCpuMs + aggIoMs, a.aggregatorMemoryMb);
    const sqsRequests = messages + (2 * messages) / a.messagesPerReceive;
    const lines: CostLine[] = [
      { item: 'API Gateway HTTP API', usd: (requests / 1e6) * PRICES.httpApiPerM, how: `${requests} requests × $${PRICES.httpApiPerM}/M` },
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
        how: `${round(invocations, 1)} invocations of ≤ ${perInvocation} messages (6 MB) × ${la.billedMs} ms (${agg.cpuUsPerCall} µs CPU/call measured ÷ ${round(vAgg, 2)} vCPU + writes × ${a.dynamoWriteMs} ms ÷ ${a.dynamoConcurrency}) × 1 GB`,
      },
      { item: 'DynamoDB writes', usd: (agg.writeUnitsPer1M / 1e6) * PRICES.dynamoWriteUnitPerM, how: `${agg.writeUnitsPer1M} write units measured × $0.625/M` },
      { item: 'DynamoDB reads', usd: (agg.dynamoReadsPer1M / 1e6) * PRICES.dynamoReadUnitPerM, how: `${agg.dynamoReadsPer1M} reads measured × $0.125/M` },
      { item: 'PostHog events', usd: agg.posthogEventsPer1M * PRICES.posthogPerEventHighVolume, how: `${agg.posthogEventsPer1M} batch events measured × $${PRICES.posthogPerEventHighVolume}` },
    ];
    const per1M = lines.reduce((s, l) => s + l.usd, 0);
    rows.push({ approach: `tally (${queue === 'sdk' ? 'SDK SQS client' : 'sqs-fast'})`, case: c, callsPerRequest: per, lines: lines.map((l) => ({ ...l, usd: round(l.usd, 4) })), per1M: round(per1M, 3), perMonthAt1MPerMinute: round((per1M * MONTH_CALLS) / 1e6, 0) });

    // API Gateway → SQS direct integration (no ingest Lambda: no validation, no PostHog routes), same aggregator.
    const direct: CostLine[] = [
      lines[0]!,
      { item: 'SQS send + receive + delete', usd: (sqsRequests / 1e6) * PRICES.sqsRequestPerM, how: 'as above: one message per request' },
      lines[4]!,
      lines[5]!,
      lines[6]!,
      lines[7]!,
    ];
    const d1M = direct.reduce((s, l) => s + l.usd, 0);
    rows.push({ approach: 'API Gateway → SQS direct + tally aggregator', case: c, callsPerRequest: per, lines: direct.map((l) => ({ ...l, usd: round(l.usd, 4) })), per1M: round(d1M, 3), perMonthAt1MPerMinute: round((d1M * MONTH_CALLS) / 1e6, 0) });
  }
  // PostHog per event: every call an event (the naive (a)), at the high-volume and the first paid tier.
  for (const [label, price] of [
    ['PostHog, one event per call (high-volume rate)', PRICES.posthogPerEventHighVolume],
    ['PostHog, one event per call (first paid tier)', PRICES.posthogPerEventFirstTier],
  ] as const) {
    const usd = 1e6 * price;
    rows.push({ approach: label, case: 'A', callsPerRequest: 1, lines: [{ item: 'PostHog events', usd, how: `1,000,000 events × $${price}` }], per1M: round(usd, 3), perMonthAt1MPerMinute: round((usd * MONTH_CALLS) / 1e6, 0) });
  }
  return rows;
}
