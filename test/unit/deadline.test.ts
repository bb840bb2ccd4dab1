import { attemptTimeoutMs, currentDeadline, DeadlineExceededError, remainingMs, withDeadline } from '../../src/util/deadline';

describe('deadline', () => {
  it('has no deadline outside withDeadline', () => {
    expect(currentDeadline()).toBeUndefined();
    expect(remainingMs()).toBe(Infinity);
    expect(attemptTimeoutMs(3000)).toBe(3000);
  });

  it('carries the deadline through awaits and timers', async () => {
    const d = Date.now() + 1000;
    const seen = await withDeadline(d, async () => {
      await new Promise((r) => setTimeout(r, 5));
      return new Promise<number | undefined>((r) => setImmediate(() => r(currentDeadline())));
    });
    expect(seen).toBe(d);
    expect(currentDeadline()).toBeUndefined();
  });

  it('keeps an earlier outer deadline', async () => {
    const outer = Date.now() + 100;
    await withDeadline(outer, () => withDeadline(outer + 10_000, async () => expect(currentDeadline()).toBe(outer)));
    await withDeadline(outer, () => withDeadline(outer - 50, async () => expect(currentDeadline()).toBe(outer - 50)));
  });

  it('shortens attempts to what is left and refuses when nothing is', async () => {
    await withDeadline(Date.now() + 200, async () => {
      const t = attemptTimeoutMs(3000);
      expect(t).toBeLessThanOrEqual(200);
      expect(t).toBeGreaterThan(100);
    });
    await withDeadline(Date.now() - 1, async () => {
      expect(() => attemptTimeoutMs(3000)).toThrow(DeadlineExceededError);
    });
  });
});
