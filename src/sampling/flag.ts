/**
 * The sampling flag, prepared for fast and exact evaluation from the definitions posthog-node fetched.
 *
 * posthog-node's own local evaluation costs ~30 µs of CPU per call (WebCrypto SHA-1 and several promise
 * hops), too much for every event of a high-volume API. Most sampling flags are plain: a boolean flag
 * whose conditions are a rollout percentage, optionally behind person-property filters. For those,
 * {@link CompiledFlag} decides with PostHog's rules and PostHog's bucketing ({@link posthogBucket}):
 *
 * - conditions are walked in order, as posthog-node walks them: a condition matches when its
 *   properties match and the bucket is inside its rollout; the first match enables the flag; a
 *   condition whose properties cannot be decided (the event does not carry them) is skipped;
 *   `early_exit` stops at the first condition whose properties match;
 * - whether a condition's *properties* match is asked of posthog-node itself (a "shadow" client holding
 *   one derived flag per condition, properties only, no rollout), so every operator behaves exactly as
 *   in posthog-node; the answer depends only on the property values, so it is cached per condition and
 *   value: after warm-up a decision is one SHA-1 and a map lookup.
 *
 * Anything else (multivariate flags, holdouts, group flags, cohorts, flag dependencies, regex
 * operators, experience continuity, device-id bucketing) is left to posthog-node's local evaluation
 * per event ("delegated"): exact by construction, just slower.
 *
 * `sample_rate` of a sampled event is its inclusion probability: all conditions bucket on the same hash,
 * so a person whose properties match several conditions is sampled when the bucket is inside the
 * largest of their rollouts; that largest rollout / 100 is the rate (with `early_exit`, the rollout of
 * the first condition whose properties match). See docs/SAMPLING.md for why this, and not the flag's
 * `sampleRate` payload, wins when both are known.
 */
import { inRollout, posthogBucket } from './bucket';

/** The parts of a `/flags/definitions` answer tally reads (the whole answer is passed through to posthog-node). */
export interface FlagDefinitions {
  flags: RawFlag[];
  group_type_mapping?: Record<string, string>;
  cohorts?: Record<string, unknown>;
  property_matching_version?: number;
  [k: string]: unknown;
}

export interface RawProperty {
  key: string;
  type?: string;
  value?: unknown;
  operator?: string;
  [k: string]: unknown;
}

export interface RawCondition {
  properties?: RawProperty[];
  rollout_percentage?: number | null;
  variant?: string | null;
  aggregation_group_type_index?: number | null;
  [k: string]: unknown;
}

export interface RawFlag {
  key: string;
  active?: boolean;
  ensure_experience_continuity?: boolean;
  bucketing_identifier?: string | null;
  filters?: {
    groups?: RawCondition[];
    multivariate?: { variants?: unknown[] } | null;
    payloads?: Record<string, unknown>;
    holdout?: { id?: number | null; exclusion_percentage?: number | null } | null;
    aggregation_group_type_index?: number | null;
    early_exit?: boolean;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Whether a condition's properties match, as posthog-node decides it. */
export type PropsMatch = 'match' | 'no_match' | 'inconclusive';

/** Asks posthog-node whether the properties of the derived flag `derivedKey` match. */
export type PropsOracle = (derivedKey: string, distinctId: string, personProperties: Record<string, unknown>) => Promise<PropsMatch>;

/** The decision for one event. */
export type Decision = { sampled: false } | { sampled: true; rate: number };
export const NOT_SAMPLED: Decision = Object.freeze({ sampled: false });

/** Operators whose matching depends on the property value alone (posthog-core `matchFeatureFlagProperty`). */
const VALUE_OPERATORS = new Set(['exact', 'is_not', 'is_set', 'is_not_set', 'icontains', 'not_icontains', 'gt', 'gte', 'lt', 'lte']);

/** A `{"sampleRate": x}` payload of the enabled value, if it is a number in (0, 1]. */
export function payloadSampleRate(flag: RawFlag): number | undefined {
  let p = flag.filters?.payloads?.['true'];
  if (typeof p === 'string') {
    try {
      p = JSON.parse(p);
    } catch {
      return undefined;
    }
  }
  if (typeof p !== 'object' || p === null) return undefined;
  const r = (p as Record<string, unknown>).sampleRate;
  return typeof r === 'number' && r > 0 && r <= 1 ? r : undefined;
}

/** Why posthog-node must evaluate this flag itself, or undefined when tally can compile it. */
export function delegationReason(flag: RawFlag): string | undefined {
  const f = flag.filters ?? {};
  if (flag.ensure_experience_continuity) return 'experience continuity';
  if (flag.bucketing_identifier === 'device_id') return 'device-id bucketing';
  if (f.aggregation_group_type_index != null) return 'group flag';
  if ((f.multivariate?.variants?.length ?? 0) > 0) return 'multivariate flag';
  if (f.holdout != null && f.holdout.id != null && f.holdout.exclusion_percentage != null) return 'holdout';
  for (const c of f.groups ?? []) {
    if (c.aggregation_group_type_index != null) return 'group condition';
    for (const p of c.properties ?? []) {
      if (p.type !== undefined && p.type !== 'person') return `${p.type} property`;
      if (!VALUE_OPERATORS.has(p.operator ?? 'exact')) return `operator ${p.operator}`;
    }
  }
  return undefined;
}

/** The derived flag key that asks "do condition `i`'s properties match?". */
export const derivedKey = (flagKey: string, i: number): string => `${flagKey}#tally-condition-${i}`;

const MISSING = '\u0000';
const MAX_CACHE = 10_000;

interface Condition {
  index: number;
  rollout: number | null | undefined;
  /** Rate when this condition decides: rollout / 100, 1 without a rollout. */
  rate: number;
  /** Derived flag key; undefined when the condition has no properties (it always matches). */
  derived?: string;
  keys: string[];
  cache: Map<string, PropsMatch>;
  /** Oracle calls in flight, so a burst of misses for the same values asks once. */
  inflight: Map<string, Promise<PropsMatch>>;
}

const MISS = Symbol('miss');
type Walk = Decision | typeof MISS;

/** A compiled boolean flag; see the module comment. */
export class CompiledFlag {
  readonly kind = 'compiled' as const;
  readonly key: string;
  readonly earlyExit: boolean;
  private readonly conditions: Condition[];
  /** Conditions with properties: their derived flags go to the shadow client. */
  readonly derived: Array<{ key: string; properties: RawProperty[] }>;

  constructor(
    private readonly flag: RawFlag,
    private readonly oracle: PropsOracle,
  ) {
    this.key = flag.key;
    this.earlyExit = flag.filters?.early_exit === true;
    this.derived = [];
    this.conditions = (flag.filters?.groups ?? []).map((c, index) => {
      const properties = c.properties ?? [];
      const rollout = c.rollout_percentage;
      const cond: Condition = { index, rollout, rate: rollout == null ? 1 : Math.min(Math.max(rollout, 0), 100) / 100, keys: [], cache: new Map(), inflight: new Map() };
      if (properties.length > 0) {
        cond.derived = derivedKey(flag.key, index);
        cond.keys = [...new Set(properties.map((p) => p.key))];
        this.derived.push({ key: cond.derived, properties });
      }
      return cond;
    });
  }

  /** Sampled or not, and at what rate. Synchronous once the property caches are warm. */
  decide(distinctId: string, props: Record<string, unknown>): Decision | Promise<Decision> {
    const h = posthogBucket(this.key, distinctId);
    const r = this.walk(h, distinctId, props, undefined);
    if (r !== MISS) return r;
    return this.fill(distinctId, props).then((local) => {
      const again = this.walk(h, distinctId, props, local);
      return again === MISS ? NOT_SAMPLED : again;
    });
  }

  private cacheKey(c: Condition, distinctId: string, props: Record<string, unknown>): string | undefined {
    let key = '';
    try {
      for (const k of c.keys) {
        // posthog-node evaluates with { distinct_id, ...personProperties }.
        const own = Object.prototype.hasOwnProperty.call(props, k);
        const v = own ? props[k] : k === 'distinct_id' ? distinctId : MISSING;
        key += (v === MISSING ? MISSING : JSON.stringify(v) ?? 'undefined') + '\u0001';
      }
    } catch {
      return undefined; // not serialisable: ask without caching
    }
    return key;
  }

  private lookup(c: Condition, distinctId: string, props: Record<string, unknown>, local: Map<number, PropsMatch> | undefined): PropsMatch | undefined {
    if (c.derived === undefined) return 'match';
    const l = local?.get(c.index);
    if (l !== undefined) return l;
    const k = this.cacheKey(c, distinctId, props);
    return k === undefined ? undefined : c.cache.get(k);
  }

  /** posthog-node's condition walk for a boolean flag; MISS when a property answer is not cached yet. */
  private walk(h: number, distinctId: string, props: Record<string, unknown>, local: Map<number, PropsMatch> | undefined): Walk {
    const cs = this.conditions;
    let hit = -1;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      const inside = inRollout(h, c.rollout);
      // Without early exit, a condition outside its rollout cannot enable the flag, whatever its properties.
      if (!inside && !this.earlyExit) continue;
      const m = this.lookup(c, distinctId, props, local);
      if (m === undefined) return MISS;
      if (m !== 'match') continue;
      if (!inside) return NOT_SAMPLED; // early exit: the first condition whose properties match decides
      hit = i;
      break;
    }
    if (hit === -1) return NOT_SAMPLED;
    if (this.earlyExit) return { sampled: true, rate: cs[hit]!.rate };
    // Inclusion probability: the largest rollout among the conditions whose properties match. Earlier
    // conditions cannot raise it: one inside its rollout did not match (or the walk would have stopped
    // there), and one outside it has a rollout below the bucket, so below the hit's.
    let rate = cs[hit]!.rate;
    for (let i = hit + 1; i < cs.length; i++) {
      const c = cs[i]!;
      if (c.rate <= rate) continue;
      const m = this.lookup(c, distinctId, props, local);
      if (m === undefined) return MISS;
      if (m === 'match') rate = c.rate;
    }
    return { sampled: true, rate };
  }

  /** Asks the oracle about every condition with properties and caches the answers. */
  private async fill(distinctId: string, props: Record<string, unknown>): Promise<Map<number, PropsMatch>> {
    const local = new Map<number, PropsMatch>();
    await Promise.all(
      this.conditions.map(async (c) => {
        if (c.derived === undefined) return;
        const k = this.cacheKey(c, distinctId, props);
        const cached = k === undefined ? undefined : c.cache.get(k);
        if (cached !== undefined) return void local.set(c.index, cached);
        let ask = k === undefined ? undefined : c.inflight.get(k);
        if (ask === undefined) {
          ask = this.oracle(c.derived, distinctId, props).catch((): PropsMatch => 'inconclusive');
          if (k !== undefined) {
            c.inflight.set(k, ask);
            void ask.then((m) => {
              c.inflight.delete(k);
              if (c.cache.size >= MAX_CACHE) c.cache.clear();
              c.cache.set(k, m);
            });
          }
        }
        local.set(c.index, await ask);
      }),
    );
    return local;
  }

  /** The payload's `sampleRate`, when set (only reported: the computed rate wins). */
  get payloadRate(): number | undefined {
    return payloadSampleRate(this.flag);
  }

  /** Distinct rates the conditions can give. */
  get conditionRates(): number[] {
    return [...new Set(this.conditions.map((c) => c.rate))];
  }
}

/** The flag, as the sampler will treat it. */
export type FlagPlan =
  | { kind: 'missing'; key: string }
  | { kind: 'inactive'; key: string }
  | CompiledFlag
  | { kind: 'delegated'; key: string; reason: string; rate: number; rateSource: 'payload' | 'rollout' | 'unknown' };

/** Prepares the flag `key` of `defs`; `notes` collects what an operator should know (logged once per load). */
export function planFlag(defs: FlagDefinitions, key: string, oracle: PropsOracle, notes: string[] = []): FlagPlan {
  const flag = defs.flags.find((f) => f.key === key);
  if (!flag) {
    notes.push(`flag "${key}" is not in the definitions: nothing is sampled`);
    return { kind: 'missing', key };
  }
  if (flag.active === false) {
    notes.push(`flag "${key}" is disabled: nothing is sampled`);
    return { kind: 'inactive', key };
  }
  const payload = payloadSampleRate(flag);
  const reason = delegationReason(flag);
  if (reason !== undefined) {
    const rollouts = [...new Set((flag.filters?.groups ?? []).map((c) => (c.rollout_percentage == null ? 100 : c.rollout_percentage)))];
    const rate = payload ?? (rollouts.length === 1 ? rollouts[0]! / 100 : 1);
    const rateSource = payload !== undefined ? 'payload' : rollouts.length === 1 ? 'rollout' : 'unknown';
    notes.push(`flag "${key}" is evaluated by posthog-node per event (${reason}); sample_rate ${rate} from ${rateSource}`);
    if (rateSource === 'unknown') notes.push(`flag "${key}": conditions have different rollouts and no {"sampleRate": x} payload, so sampled events carry sample_rate 1`);
    return { kind: 'delegated', key, reason, rate, rateSource };
  }
  const compiled = new CompiledFlag(flag, oracle);
  if (payload !== undefined && compiled.conditionRates.some((r) => r !== payload)) {
    notes.push(
      `flag "${key}": payload sampleRate ${payload} differs from condition rollouts ${compiled.conditionRates.join(', ')}; ` +
        'sampled events carry the rollout of the conditions that matched (docs/SAMPLING.md)',
    );
  }
  return compiled;
}

/** Definitions holding one derived, properties-only flag per condition with properties (for the shadow client). */
export function derivedDefinitions(defs: FlagDefinitions, plan: FlagPlan): FlagDefinitions & { groupTypeMapping: Record<string, string>; cohorts: Record<string, unknown> } {
  const flags: RawFlag[] =
    plan instanceof CompiledFlag
      ? plan.derived.map((d, i) => ({
          id: -(i + 1),
          name: d.key,
          key: d.key,
          active: true,
          deleted: false,
          rollout_percentage: null,
          ensure_experience_continuity: false,
          experiment_set: [],
          filters: { groups: [{ properties: d.properties }] },
        }))
      : [];
  const v = defs.property_matching_version;
  return { flags, group_type_mapping: {}, groupTypeMapping: {}, cohorts: {}, ...(v !== undefined ? { property_matching_version: v, propertyMatchingVersion: v } : {}) };
}
