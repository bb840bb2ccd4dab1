#!/usr/bin/env node
/**
 * The tally CDK app. Configuration comes from CDK context (`-c key=value`) or TALLY_* environment
 * variables (lib/config.ts, docs/DEPLOY.md). cdk-nag's AwsSolutions pack checks the app at synth time:
 * an unacknowledged finding fails `cdk synth` and `cdk deploy`.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DeployConfigError, readConfig, type TallyConfig } from '../lib/config';
import { TallyStack } from '../lib/tally-stack';

const app = new App();

function loadConfig(): TallyConfig {
  try {
    return readConfig((key) => app.node.tryGetContext(key));
  } catch (err) {
    if (!(err instanceof DeployConfigError)) throw err;
    // A readable list of bad keys instead of a stack trace.
    console.error(err.message);
    process.exit(1);
  }
}

const config = loadConfig();
// Environment-agnostic: `cdk synth` needs no account; `cdk deploy` uses the credentials' account and Region.
new TallyStack(app, `Tally-${config.stage}`, { config });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
