/**
 * A retry budget per client: the token bucket of the AWS SDK's standard retry strategy. Every retry
 * spends tokens (5, or 10 after a timeout); a call that succeeds at once puts 1 back, a call that
 * succeeds after retries puts back what its retries spent. When the bucket is empty, failures are not
 * retried at all: fifty aggregators with 32 requests in flight each then stop multiplying their load on
 * a throttled table or an unwell service by their retry count, and recover as soon as calls succeed.
 */

/** Sizes and costs of the bucket, in tokens. */
export interface RetryBudgetOptions {
  capacity: number;
  retryCost: number;
  timeoutRetryCost: number;
  successIncrement: number;
}

/** The SDK's standard values. */
export const retryBudgetDefaults: RetryBudgetOptions = { capacity: 500, retryCost: 5, timeoutRetryCost: 10, successIncrement: 1 };

export class RetryBudget {
  private tokens: number;

  constructor(private readonly o: RetryBudgetOptions = retryBudgetDefaults) {
    this.tokens = o.capacity;
  }

  /** Tokens left. */
  get available(): number {
    return this.tokens;
  }

  /** Takes the cost of one retry; `undefined` (and nothing taken) when the budget cannot pay it. */
  acquire(afterTimeout: boolean): number | undefined {
    const cost = afterTimeout ? this.o.timeoutRetryCost : this.o.retryCost;
    if (this.tokens < cost) return undefined;
    this.tokens -= cost;
    return cost;
  }

  /** A call succeeded: give back what its retries took, or the increment if it took none. */
  release(spent: number): void {
    this.tokens = Math.min(this.o.capacity, this.tokens + (spent > 0 ? spent : this.o.successIncrement));
  }
}
