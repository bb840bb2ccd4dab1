/**
 * The compiled flag against PostHog's condition rules, with a fake property oracle (the real one is
 * posthog-node itself: test/integration/sampling.test.ts compares the two on thousands of ids).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { inRollout, posthogBucket } from '../../src/sampling/bucket';
import { CompiledFlag, delegationReason, derivedDefinitions, payloadSampleRate, planFlag, type FlagDefinitions, type PropsMatch, type RawCondition, type RawFlag } from '../../src/sampling/flag';

const LOCAL_DEFS = JSON.parse(readFileSync(resolve(__dirname, '../../local/flags-definitions.json'), 'utf8')) as FlagDefinitions;

/** Exact-match oracle over the derived flags of `flag`; counts its calls. */
function fakeOracle(flag: RawFlag) {
  const calls: string[] = [];
  const oracle = async (derivedKey: string, _id: string, props: Record<string, unknown>): Promise<PropsMatch> => {
    calls.push(derivedKey);
    const i = Number(derivedKey.split('-').pop());
    const cond = flag.filters!.groups![i]!;
    let inconclusive = false;
    for (const p of cond.properties ?? []) {
      if (!(p.key in props)) {
        inconclusive = true;
        continue;
      }
      const values = Array.isArray(p.value) ? p.value : [p.value];
      if (!values.map(String).includes(String(props[p.key]))) return 'no_match';
    }
    return inconclusive ? 'inconclusive' : 'match';
  };
  return { oracle, calls };
}

const flagWith = (groups: RawCondition[], extra: Partial<RawFlag['filters']> = {}): RawFlag => ({ key: 'usage-sampling', active: true, filters: { groups, ...extra } });
const plan = (flag: RawFlag) => {
  const { oracle, calls } = fakeOracle(flag);
  const p = planFlag({ flags: [flag] }, flag.key, oracle);
  if (!(p instanceof CompiledFlag)) throw new Error(`expected compiled, got ${p.kind}`);
  return { p, calls };
};
const decide = async (p: CompiledFlag, id: string, props: Record<string, unknown> = {}) => await p.decide(id, props);
const ids = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

describe('planFlag', () => {
  it('missing and disabled flags sample nothing', () => {
    const notes: string[] = [];
    expect(planFlag({ flags: [] }, 'usage-sampling', fakeOracle(flagWith([])).oracle, notes).kind).toBe('missing');
    expect(planFlag({ flags: [{ ...flagWith([{ rollout_percentage: 100 }]), active: false }] }, 'usage-sampling', fakeOracle(flagWith([])).oracle, notes).kind).toBe('inactive');
    expect(notes).toHaveLength(2);
  });

  it('compiles plain boolean flags; leaves everything else to posthog-node', () => {
    expect(delegationReason(flagWith([{ rollout_percentage: 10 }]))).toBeUndefined();
    expect(delegationReason(LOCAL_DEFS.flags[0]!)).toBeUndefined();
    const cases: Array<[RawFlag, RegExp]> = [
      [flagWith([{ rollout_percentage: 10 }], { multivariate: { variants: [{ key: 'a', rollout_percentage: 100 }] } }), /multivariate/],
      [flagWith([{ rollout_percentage: 10 }], { holdout: { id: 1, exclusion_percentage: 10 } }), /holdout/],
      [flagWith([{ rollout_percentage: 10 }], { aggregation_group_type_index: 0 }), /group/],
      [{ ...flagWith([{ rollout_percentage: 10 }]), ensure_experience_continuity: true }, /continuity/],
      [{ ...flagWith([{ rollout_percentage: 10 }]), bucketing_identifier: 'device_id' }, /device/],
      [flagWith([{ properties: [{ key: 'id', type: 'cohort', value: 3 }], rollout_percentage: 10 }]), /cohort/],
      [flagWith([{ properties: [{ key: 'other', type: 'flag', value: true }] }]), /flag/],
      [flagWith([{ properties: [{ key: 'email', type: 'person', value: '.*@x', operator: 'regex' }] }]), /regex/],
      [flagWith([{ rollout_percentage: 10, aggregation_group_type_index: 0 }]), /group/],
    ];
    for (const [flag, re] of cases) {
      expect(delegationReason(flag)).toMatch(re);
      expect(planFlag({ flags: [flag] }, flag.key, fakeOracle(flag).oracle).kind).toBe('delegated');
    }
  });

  it('delegated flags take sample_rate from the payload, else from a single rollout, else 1', () => {
    const mv = { multivariate: { variants: [{ key: 'a', rollout_percentage: 100 }] } };
    const p1 = planFlag({ flags: [flagWith([{ rollout_percentage: 20 }], { ...mv, payloads: { true: '{"sampleRate":0.05}' } })] }, 'usage-sampling', fakeOracle(flagWith([])).oracle);
    expect(p1).toMatchObject({ kind: 'delegated', rate: 0.05, rateSource: 'payload' });
    const p2 = planFlag({ flags: [flagWith([{ rollout_percentage: 20 }, { rollout_percentage: 20 }], mv)] }, 'usage-sampling', fakeOracle(flagWith([])).oracle);
    expect(p2).toMatchObject({ kind: 'delegated', rate: 0.2, rateSource: 'rollout' });
    const notes: string[] = [];
    const p3 = planFlag({ flags: [flagWith([{ rollout_percentage: 20 }, { rollout_percentage: 50 }], mv)] }, 'usage-sampling', fakeOracle(flagWith([])).oracle, notes);
    expect(p3).toMatchObject({ kind: 'delegated', rate: 1, rateSource: 'unknown' });
    expect(notes.join(' ')).toMatch(/sampleRate/);
  });

  it('reads the {"sampleRate": x} payload (string or object), ignoring anything else', () => {
    expect(payloadSampleRate(LOCAL_DEFS.flags[0]!)).toBe(0.1);
    expect(payloadSampleRate(flagWith([], { payloads: { true: { sampleRate: 0.5 } } }))).toBe(0.5);
    for (const bad of ['{"sampleRate":0}', '{"sampleRate":2}', '{"sampleRate":"0.1"}', 'not json', '0.1']) {
      expect(payloadSampleRate(flagWith([], { payloads: { true: bad } }))).toBeUndefined();
    }
  });

  it('notes a payload that disagrees with the rollouts', () => {
    const notes: string[] = [];
    planFlag(LOCAL_DEFS, 'usage-sampling', fakeOracle(LOCAL_DEFS.flags[0]!).oracle, notes);
    expect(notes.join(' ')).toMatch(/payload sampleRate 0.1 differs/);
  });

  it('derives one properties-only flag per condition with properties', () => {
    const { p } = plan(LOCAL_DEFS.flags[0]!);
    const d = derivedDefinitions({ ...LOCAL_DEFS, property_matching_version: 2 }, p);
    expect(d.flags).toHaveLength(1);
    expect(d.flags[0]).toMatchObject({ key: 'usage-sampling#tally-condition-0', active: true, filters: { groups: [{ properties: LOCAL_DEFS.flags[0]!.filters!.groups![0]!.properties }] } });
    expect(d.flags[0]!.filters!.groups![0]!.rollout_percentage).toBeUndefined();
    expect(d.property_matching_version).toBe(2);
  });
});

describe('CompiledFlag', () => {
  it('a rollout-only flag samples exactly the ids PostHog buckets inside it, at rate rollout/100', async () => {
    for (const pct of [0, 1, 10, 33.3, 50, 99.9, 100]) {
      const { p, calls } = plan(flagWith([{ properties: [], rollout_percentage: pct }]));
      for (const id of ids(2000)) {
        const d = await decide(p, id);
        expect(d.sampled).toBe(inRollout(posthogBucket('usage-sampling', id), pct));
        if (d.sampled) expect(d.rate).toBe(pct / 100);
      }
      expect(calls).toHaveLength(0);
    }
  });

  it('no rollout means everyone, at rate 1', async () => {
    const { p } = plan(flagWith([{ properties: [] }]));
    expect(await decide(p, 'x')).toEqual({ sampled: true, rate: 1 });
  });

  it('the fixture flag: /big/1 callers always (rate 1), everyone else 10% (rate 0.1), missing properties skip the condition', async () => {
    const { p, calls } = plan(LOCAL_DEFS.flags[0]!);
    let big = 0;
    let other = 0;
    for (const id of ids(3000)) {
      const inTen = inRollout(posthogBucket('usage-sampling', id), 10);
      expect(await decide(p, id, { firstRouteCalled: '/big/1' })).toEqual({ sampled: true, rate: 1 });
      const d = await decide(p, id, { firstRouteCalled: '/other' });
      expect(d).toEqual(inTen ? { sampled: true, rate: 0.1 } : { sampled: false });
      expect(await decide(p, id)).toEqual(d); // property absent: inconclusive condition, the 10% one decides
      big++;
      if (d.sampled) other++;
    }
    expect(big).toBe(3000);
    expect(other).toBeGreaterThan(200);
    // One oracle call per distinct value (three: /big/1, /other, absent), whatever the number of ids.
    expect(calls).toHaveLength(3);
  });

  it('sample_rate is the largest rollout among the conditions whose properties match', async () => {
    const flag = flagWith([
      { properties: [{ key: 'plan', value: 'pro' }], rollout_percentage: 10 },
      { properties: [{ key: 'region', value: 'eu' }], rollout_percentage: 50 },
      { properties: [], rollout_percentage: 5 },
    ]);
    const { p } = plan(flag);
    for (const id of ids(3000)) {
      const h = posthogBucket('usage-sampling', id);
      const both = await decide(p, id, { plan: 'pro', region: 'eu' });
      expect(both).toEqual(h <= 0.5 ? { sampled: true, rate: 0.5 } : { sampled: false });
      const pro = await decide(p, id, { plan: 'pro', region: 'us' });
      expect(pro).toEqual(h <= 0.1 ? { sampled: true, rate: 0.1 } : { sampled: false });
      const none = await decide(p, id, { plan: 'free', region: 'us' });
      expect(none).toEqual(h <= 0.05 ? { sampled: true, rate: 0.05 } : { sampled: false });
    }
  });

  it('early_exit: the first condition whose properties match decides, at its rollout', async () => {
    const flag = flagWith(
      [
        { properties: [{ key: 'plan', value: 'pro' }], rollout_percentage: 10 },
        { properties: [], rollout_percentage: 50 },
      ],
      { early_exit: true },
    );
    const { p } = plan(flag);
    for (const id of ids(2000)) {
      const h = posthogBucket('usage-sampling', id);
      expect(await decide(p, id, { plan: 'pro' })).toEqual(h <= 0.1 ? { sampled: true, rate: 0.1 } : { sampled: false });
      expect(await decide(p, id, { plan: 'free' })).toEqual(h <= 0.5 ? { sampled: true, rate: 0.5 } : { sampled: false });
      // Inconclusive first condition: skipped, the second decides.
      expect(await decide(p, id)).toEqual(h <= 0.5 ? { sampled: true, rate: 0.5 } : { sampled: false });
    }
  });

  it('decides synchronously once the property answers are cached; asks once for a burst of misses', async () => {
    const { p, calls } = plan(LOCAL_DEFS.flags[0]!);
    const burst = ids(500).map((id) => p.decide(id, { firstRouteCalled: '/big/1' }));
    await Promise.all(burst);
    expect(calls).toHaveLength(1);
    const d = p.decide('user-1', { firstRouteCalled: '/big/1' });
    expect(d).not.toBeInstanceOf(Promise);
    expect(d).toEqual({ sampled: true, rate: 1 });
  });

  it('a failing oracle counts as inconclusive (never sampled through that condition)', async () => {
    const flag = flagWith([{ properties: [{ key: 'plan', value: 'pro' }], rollout_percentage: 100 }]);
    const p = planFlag({ flags: [flag] }, flag.key, async () => {
      throw new Error('boom');
    }) as CompiledFlag;
    expect(await p.decide('x', { plan: 'pro' })).toEqual({ sampled: false });
  });
});
