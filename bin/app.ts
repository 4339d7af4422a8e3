#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import { loadConfig } from '../config';
import { buildPlatform } from '../lib/stacks/platform';

const app = new App();
const envName = String(app.node.tryGetContext('env') ?? 'dev');
buildPlatform(app, loadConfig(envName));
// Compliance is part of synth: an unacknowledged finding stops the build.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
app.synth();
