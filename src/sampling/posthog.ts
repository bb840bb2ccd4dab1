/**
 * {@link Sampler} over posthog-node's local evaluation.
 *
 * - One long-lived client per container polls `GET /flags/definitions` with the personal (`phx_`) or
 *   project secret (`phs_`) key in the background (every `pollIntervalMs`, 30 s by default). Its fetch is
 *   fenced: any other request (remote evaluation `/flags/`, `/decide/`, captures) is refused and
 *   counted, so no request can ever wait on a remote flag call, whatever posthog-node decides. It
 *   evaluates with `strictLocalEvaluation` and never sends `$feature_flag_called` events.
 * - Each set of definitions posthog-node receives (through the public `flagDefinitionCacheProvider`
 *   hook) is planned once (./flag.ts): plain boolean flags are compiled for ~1 µs decisions; other flags
 *   are evaluated by this client's `getFeatureFlagResult(..., { onlyEvaluateLocally: true })`.
 * - A second, network-less client holds the derived properties-only flags the compiled path asks
 *   about (`shadowFor`), so property operators keep posthog-node's exact semantics.
 * - Cold start: the first `sample()` waits for the first definitions at most `readyTimeoutMs` after
 *   the sampler was created, once; without definitions nothing is sampled (and counted as unavailable).
 */
import { PostHog, type FlagDefinitionCacheData, type FlagDefinitionCacheProvider } from 'posthog-node';
import type { QueuedEvent } from '../types';
import { CompiledFlag, derivedDefinitions, planFlag, type FlagDefinitions, type FlagPlan, type PropsMatch } from './flag';
import { personPropertiesOf, type PersonPropertyMapping } from './person';
import { isCounted, type SampledEvent, type SampleOutcome, type Sampler, type SamplingLog } from './types';

type Fetch = NonNullable<ConstructorParameters<typeof PostHog>[1]>['fetch'];
type FetchFn = NonNullable<Fetch>;

export interface PostHogSamplerOptions {
  /** Project API key (`phc_…`), sent as `token` with the definitions request. */
  projectKey: string;
  /** Personal (`phx_…`) or project secret (`phs_…`) key for `/flags/definitions`. */
  personalKey: string;
  host: string;
  flagKey: string;
  personProperties: PersonPropertyMapping;
  /** Timeout of one definitions request. */
  requestTimeoutMs: number;
  /** Longest a cold start waits for the first definitions (counted from construction). */
  readyTimeoutMs: number;
  /** Background refresh interval (posthog-node's featureFlagsPollingInterval). */
  pollIntervalMs?: number;
  log?: SamplingLog;
  /** Transport for the definitions request (tests). */
  fetch?: FetchFn;
}

export const samplerDefaults = { pollIntervalMs: 30_000 };

const DEFINITION_PATHS = ['/flags/definitions', '/api/feature_flag/local_evaluation'];
const noNetwork: FetchFn = () => Promise.reject(new Error('tally: the shadow flag client has no network'));

export class PostHogSampler implements Sampler {
  private readonly o: PostHogSamplerOptions & { pollIntervalMs: number };
  private readonly client: PostHog;
  private readonly shadow: PostHog;
  private plan: FlagPlan | undefined;
  private fingerprint = '';
  private derived: FlagDefinitionCacheData | undefined;
  private readonly createdAt = Date.now();
  private firstLoad!: Promise<void>;
  private resolveFirstLoad!: () => void;
  private initialWait: Promise<void> | undefined;
  private updates: Promise<void> = Promise.resolve();
  /** Requests other than the definitions fetch that the fence refused (should stay 0). */
  blockedRequests = 0;
  /** Definitions sets received. */
  loads = 0;

  constructor(opts: PostHogSamplerOptions) {
    this.o = { ...samplerDefaults, ...opts };
    this.firstLoad = new Promise((r) => (this.resolveFirstLoad = r));
    const log = this.o.log ?? (() => undefined);
    const transport = this.o.fetch ?? (globalThis.fetch as unknown as FetchFn);
    const fenced: FetchFn = (url, options) => {
      const path = new URL(url).pathname.replace(/\/+$/, '');
      if (DEFINITION_PATHS.some((p) => path.endsWith(p))) return transport(url, options);
      this.blockedRequests++;
      log('error', 'refused a PostHog request other than the flag definitions', { path });
      return Promise.reject(new Error(`tally refuses ${path}: sampling evaluates flags locally only`));
    };
    const provider: FlagDefinitionCacheProvider = {
      getFlagDefinitions: () => undefined,
      shouldFetchFlagDefinitions: () => true,
      onFlagDefinitionsReceived: (data) => this.enqueueUpdate(data as unknown as FlagDefinitions),
      shutdown: () => undefined,
    };
    this.client = new PostHog(this.o.projectKey, {
      host: this.o.host,
      secretKey: this.o.personalKey,
      featureFlagsPollingInterval: this.o.pollIntervalMs,
      requestTimeout: this.o.requestTimeoutMs,
      fetchRetryCount: 0,
      strictLocalEvaluation: true,
      sendFeatureFlagEvent: false,
      flagDefinitionCacheProvider: provider,
      flushAt: 1,
      flushInterval: 0,
      disableGeoip: true,
      enableExceptionAutocapture: false,
      fetch: fenced,
    });
    this.client.on('error', (err: unknown) => log('warn', 'PostHog flag definitions', { error: String(err) }));
    const shadowProvider: FlagDefinitionCacheProvider = {
      getFlagDefinitions: () => this.derived,
      shouldFetchFlagDefinitions: () => false,
      onFlagDefinitionsReceived: () => undefined,
      shutdown: () => undefined,
    };
    this.shadow = new PostHog(this.o.projectKey, {
      host: 'http://127.0.0.1:9',
      featureFlagsPollingInterval: null,
      strictLocalEvaluation: true,
      sendFeatureFlagEvent: false,
      flagDefinitionCacheProvider: shadowProvider,
      flushAt: 1,
      flushInterval: 0,
      disableGeoip: true,
      enableExceptionAutocapture: false,
      fetch: noNetwork,
    });
  }

  /** 'loading' until the first definitions, then 'ready' (or 'unavailable' after the cold-start bound). */
  get state(): 'loading' | 'ready' | 'unavailable' {
    if (this.plan) return 'ready';
    return Date.now() - this.createdAt < this.o.readyTimeoutMs ? 'loading' : 'unavailable';
  }

  /** What the sampler does with the flag now: compiled, delegated (to posthog-node), missing, inactive. */
  get mode(): FlagPlan['kind'] | 'loading' {
    return this.plan?.kind ?? 'loading';
  }

  /** Resolves when the first definitions are loaded (tests, warm-up). */
  whenLoaded(): Promise<void> {
    return this.firstLoad;
  }

  private enqueueUpdate(data: FlagDefinitions): Promise<void> {
    // Updates apply in order; a failure is logged and keeps the previous plan.
    this.updates = this.updates.then(() => this.update(data)).catch((err: unknown) => this.o.log?.('error', 'cannot use the flag definitions', { error: String(err) }));
    return this.updates;
  }

  private async update(data: FlagDefinitions): Promise<void> {
    this.loads++;
    const flag = data.flags?.find((f) => f.key === this.o.flagKey);
    const fingerprint = JSON.stringify([flag ?? null, data.property_matching_version ?? null]);
    if (this.plan && fingerprint === this.fingerprint) return; // unchanged: keep the warm caches
    const notes: string[] = [];
    const plan = planFlag({ ...data, flags: data.flags ?? [] }, this.o.flagKey, this.oracle, notes);
    if (plan instanceof CompiledFlag && plan.derived.length > 0) {
      this.derived = derivedDefinitions(data, plan) as unknown as FlagDefinitionCacheData;
      // A reload joins a load already in flight (which may have read older data): check, and reload again.
      const want = plan.derived.map((d) => d.key);
      for (let i = 0; i < 3; i++) {
        await this.shadow.reloadFeatureFlags();
        const loaded = new Set(this.shadow.getFeatureFlagKeysByEvaluationRuntime('all'));
        if (want.every((k) => loaded.has(k))) break;
        if (i === 2) throw new Error('the property-matching client did not load the derived flags');
      }
    }
    this.plan = plan;
    this.fingerprint = fingerprint;
    this.o.log?.('info', `sampling flag "${this.o.flagKey}" loaded: ${plan.kind}`, notes.length ? { notes } : undefined);
    this.resolveFirstLoad();
  }

  private readonly oracle = async (derivedKey: string, distinctId: string, props: Record<string, unknown>): Promise<PropsMatch> => {
    const r = await this.shadow.getFeatureFlagResult(derivedKey, distinctId, {
      personProperties: props as Record<string, string>,
      onlyEvaluateLocally: true,
      sendFeatureFlagEvents: false,
    });
    return r === undefined ? 'inconclusive' : r.enabled ? 'match' : 'no_match';
  };

  private async waitForDefinitions(): Promise<void> {
    const left = this.o.readyTimeoutMs - (Date.now() - this.createdAt);
    if (left <= 0) return;
    this.initialWait ??= new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      void this.firstLoad.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
    await this.initialWait;
  }

  async sample(events: readonly QueuedEvent[]): Promise<SampleOutcome> {
    const candidates = events.filter(isCounted);
    if (candidates.length === 0) return { sampled: [], evaluated: 0, unavailable: 0 };
    if (!this.plan) await this.waitForDefinitions();
    const plan = this.plan;
    if (!plan) return { sampled: [], evaluated: 0, unavailable: candidates.length };
    if (plan.kind === 'missing' || plan.kind === 'inactive') return { sampled: [], evaluated: candidates.length, unavailable: 0 };
    // posthog-node drops every definition on a quota answer (402) without telling the cache provider.
    if (!this.client.isLocalEvaluationReady()) return { sampled: [], evaluated: 0, unavailable: candidates.length };

    const sampled: SampledEvent[] = [];
    const mapping = this.o.personProperties;
    if (plan instanceof CompiledFlag) {
      for (const e of candidates) {
        let d = plan.decide(e.distinct_id, personPropertiesOf(e, mapping));
        // A property answer not cached yet: wait for it here, so the events after it with the same values hit the cache.
        if (d instanceof Promise) d = await d;
        if (d.sampled) sampled.push({ event: e, rate: d.rate });
      }
    } else {
      await Promise.all(
        candidates.map(async (e) => {
          try {
            const r = await this.client.getFeatureFlagResult(plan.key, e.distinct_id, {
              personProperties: personPropertiesOf(e, mapping) as Record<string, string>,
              onlyEvaluateLocally: true,
              sendFeatureFlagEvents: false,
            });
            if (r?.enabled) sampled.push({ event: e, rate: plan.rate });
          } catch {
            /* not sampled */
          }
        }),
      );
    }
    return { sampled, evaluated: candidates.length, unavailable: 0 };
  }

  async close(): Promise<void> {
    await Promise.all([this.client.shutdown(1000), this.shadow.shutdown(1000)]).catch(() => undefined);
  }
}
