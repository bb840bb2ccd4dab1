/**
 * cdk-nag's AwsSolutions pack over the stack: no unacknowledged finding (error or warning), every
 * acknowledgement states its reason, and the set of acknowledged rules only changes on purpose.
 */
import { App, CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, NagMessageLevel, NagPack, type NagPackProps, rules } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { synth } from './support';

const findings = (stack: Stack) =>
  new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack).violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity,
    resources: v.violatingResources.map((r) => r.constructPath),
    description: v.description,
  }));

/** Acknowledgements recorded anywhere in the tree: rule id → reasons. */
function acknowledgements(root: IConstruct): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        (out[id.replace(/^annotation::/i, '')] ??= []).push(reason);
      }
    }
  }
  return out;
}

describe('cdk-nag AwsSolutions', () => {
  it.each([
    ['defaults', {}],
    ['referenced API-keys secret, e-mail, destroy, other stage', { apiKeysSecretName: 'k', alarmEmail: 'a@example.com', removalPolicy: 'destroy', stage: 'prod' }],
    ['access logs on, CORS', { accessLogs: 'on', corsOrigins: 'https://app.example.com' }],
    ['Function URL front door, reserved ingest concurrency', { frontDoor: 'function-url', ingestReservedConcurrency: 100, lambdaConcurrencyQuota: 1000 }],
  ])('reports nothing for the stack (%s)', (_name, context) => {
    const { stack } = synth(context);
    expect(findings(stack)).toEqual([]);
  });

  it('only the reviewed rules are acknowledged, each with a reason', () => {
    const { stack } = synth();
    const acks = acknowledgements(stack);
    expect(Object.keys(acks).sort()).toEqual(['AwsSolutions-APIG1', 'AwsSolutions-APIG4', 'AwsSolutions-L1', 'AwsSolutions-SMG4']);
    for (const reasons of Object.values(acks)) {
      for (const reason of reasons) expect(reason.length).toBeGreaterThanOrEqual(60);
    }
  });

  it('each acknowledgement is still needed (the rule fires without it)', () => {
    const original = Validations.prototype.acknowledge;
    Validations.prototype.acknowledge = function () {};
    try {
      const { stack } = synth();
      expect([...new Set(findings(stack).map((f) => f.rule))].sort()).toEqual(['AwsSolutions-APIG1', 'AwsSolutions-APIG4', 'AwsSolutions-L1', 'AwsSolutions-SMG4']);
    } finally {
      Validations.prototype.acknowledge = original;
    }
  });

  it('is really checking (a queue without DLQ or TLS is reported)', () => {
    const stack = new Stack(new App(), 'Bad');
    new sqs.Queue(stack, 'Q');
    expect(findings(stack).map((f) => f.rule).sort()).toEqual(['AwsSolutions-SQS3', 'AwsSolutions-SQS4']);
  });
});

/** Rules outside AwsSolutions that tally also wants: the SQS visibility rule for its event source. */
class TallyExtraChecks extends NagPack {
  readonly name = 'TallyExtra';
  constructor(props?: NagPackProps) {
    super(undefined, props);
    this.packName = 'TallyExtra';
  }
  protected checkResource(node: CfnResource): void {
    this.applyRule({
      info: 'The SQS queue visibility timeout is less than 6 times the timeout of the function it triggers.',
      explanation: 'Lambda needs the margin to retry a throttled batch before the message becomes visible again.',
      level: NagMessageLevel.ERROR,
      node,
      rule: rules.lambda.LambdaEventSourceSQSVisibilityTimeout,
    });
  }
}

describe('extra cdk-nag rules', () => {
  it('queue visibility timeout is at least 6 × the aggregator timeout', () => {
    const { stack } = synth();
    expect(new TallyExtraChecks().validateScope(stack).violations).toEqual([]);
  });
});
