#!/usr/bin/env node
import { BackgroundCloudFormationValidation } from './background-validation';

// Started before anything else loads, so that the template validator warms up meanwhile.
const templateValidation = BackgroundCloudFormationValidation.start();

/* eslint-disable @typescript-eslint/no-require-imports */
const { App, Validations } = require('aws-cdk-lib') as typeof import('aws-cdk-lib');
const { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } = require('cdk-nag') as typeof import('cdk-nag');
const { loadConfig } = require('../config') as typeof import('../config');
const { buildPlatform } = require('../lib/stacks/platform') as typeof import('../lib/stacks/platform');
/* eslint-enable @typescript-eslint/no-require-imports */

const app = new App();
const envName = String(app.node.tryGetContext('env') ?? 'dev');
buildPlatform(app, loadConfig(envName));
// Compliance is part of synth: an unacknowledged finding stops the build.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
if (templateValidation !== undefined) {
  Validations.of(app).addPlugins(templateValidation);
}
app.synth();
