#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import { BackgroundCloudFormationValidation } from './background-validation';

// Started before the blueprint's modules load, so that the template validator warms up meanwhile.
const templateValidation = BackgroundCloudFormationValidation.start();

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { loadConfig } = require('../config') as typeof import('../config');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { buildPlatform } = require('../lib/stacks/platform') as typeof import('../lib/stacks/platform');

const app = new App();
const envName = String(app.node.tryGetContext('env') ?? 'dev');
buildPlatform(app, loadConfig(envName));
// Compliance is part of synth: an unacknowledged finding stops the build.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
if (templateValidation !== undefined) {
  Validations.of(app).addPlugins(templateValidation);
}
app.synth();
