/**
 * Helpers for the CDK template tests: build the stack the way bin/tally.ts does, with the feature flags of
 * cdk.json, but without bundling (the `aws:cdk:bundling-stacks: []` context makes NodejsFunction skip
 * esbuild, which keeps `npm test` fast; test/cdk/bundle.test.ts bundles for real).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readConfig, type TallyConfig } from '../../lib/config';
import { TallyStack } from '../../lib/tally-stack';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Feature flags and other context from cdk.json, so tests synthesize what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

export interface Synth {
  app: App;
  stack: TallyStack;
  template: Template;
  json: TemplateJson;
  config: TallyConfig;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, any>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  DependsOn?: string[];
}
export interface TemplateJson {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export function synth(
  context: Record<string, unknown> = {},
  env: Record<string, string | undefined> = {},
  opts: { bundle?: boolean; outdir?: string } = {},
): Synth {
  const app = new App({
    context: { ...cdkJsonContext(), ...(opts.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }), ...context },
    outdir: opts.outdir,
  });
  const config = readConfig((key) => app.node.tryGetContext(key), env);
  const stack = new TallyStack(app, `Tally-${config.stage}`, { config });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as TemplateJson, config };
}

export function resourcesOfType(json: TemplateJson, type: string): Array<[string, CfnResource]> {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

/** The logical id of the function named `tally-<stage>-<name>`. */
export function functionId(json: TemplateJson, name: string): string {
  const hit = resourcesOfType(json, 'AWS::Lambda::Function').find(([, r]) => String(r.Properties?.FunctionName).endsWith(`-${name}`));
  if (!hit) throw new Error(`no function ${name}`);
  return hit[0];
}

export function fn(json: TemplateJson, name: string): Record<string, any> {
  return json.Resources[functionId(json, name)].Properties!;
}

/** Logical id referenced by `{Ref}` or `{Fn::GetAtt: [id, …]}`. */
export function refId(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return v.Ref;
    if (Array.isArray(v['Fn::GetAtt'])) return String(v['Fn::GetAtt'][0]);
  }
  return undefined;
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
  Condition?: unknown;
}

export const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every statement that applies to a role: its inline policies and every AWS::IAM::Policy attached to it. */
export function roleStatements(json: TemplateJson, roleId: string): Statement[] {
  const role = json.Resources[roleId];
  const inline = asArray<any>(role.Properties?.Policies).flatMap((p) => asArray<Statement>(p.PolicyDocument.Statement));
  const attached = resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, p]) => asArray<unknown>(p.Properties!.Roles).some((r) => refId(r) === roleId))
    .flatMap(([, p]) => asArray<Statement>(p.Properties!.PolicyDocument.Statement));
  return [...inline, ...attached];
}

/** Every policy statement anywhere in the template (identity and resource policies). */
export function allStatements(json: TemplateJson): Array<{ resource: string; type: string; statement: Statement }> {
  const out: Array<{ resource: string; type: string; statement: Statement }> = [];
  const visit = (resource: string, type: string, doc: any) => {
    for (const statement of asArray<Statement>(doc?.Statement)) out.push({ resource, type, statement });
  };
  for (const [id, r] of Object.entries(json.Resources)) {
    const p = r.Properties ?? {};
    if (p.PolicyDocument) visit(id, r.Type, p.PolicyDocument);
    if (p.AssumeRolePolicyDocument) visit(id, r.Type, p.AssumeRolePolicyDocument);
    for (const pol of asArray<any>(p.Policies)) visit(id, r.Type, pol.PolicyDocument);
  }
  return out;
}

/**
 * Actions granted by a role, mapped to the logical ids (or JSON) of the resources they apply to; a grant
 * limited to DynamoDB partition keys reads `<table id> if pk in [PROJECTS, KEY#*]`, any other condition
 * `<resource> if <JSON>`.
 */
export function grants(json: TemplateJson, roleId: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of roleStatements(json, roleId)) {
    expect(s.Effect).toBe('Allow');
    const c = s.Condition as Record<string, Record<string, unknown>> | undefined;
    const lk = c?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] as string[] | undefined;
    const cond = c === undefined ? '' : lk && Object.keys(c).length === 1 && Object.keys(c['ForAllValues:StringLike']!).length === 1 ? ` if pk in [${lk.join(', ')}]` : ` if ${JSON.stringify(c)}`;
    for (const action of asArray(s.Action)) {
      for (const res of asArray(s.Resource)) {
        (out[action] ??= []).push(`${refId(res) ?? JSON.stringify(res)}${cond}`);
      }
    }
  }
  for (const k of Object.keys(out)) out[k].sort();
  return out;
}
