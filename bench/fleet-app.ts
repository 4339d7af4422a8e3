// The blueprint's prod environment with FLEET_FAMILIES model families cloned from its first one
// (config/fleet.ts), synthesized as bin/app.ts synthesizes an environment: cdk-nag, and aws-cdk-lib's
// template validation on its worker thread. For `npm run bench`: how synth time grows with the fleet.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import { BackgroundCloudFormationValidation } from '../bin/background-validation';

const templateValidation = BackgroundCloudFormationValidation.start();

/* eslint-disable @typescript-eslint/no-require-imports */
const { parseConfig } = require('../config') as typeof import('../config');
const { fleetConfig } = require('../config/fleet') as typeof import('../config/fleet');
const { prod } = require('../config/prod') as typeof import('../config/prod');
const { buildPlatform } = require('../lib/stacks/platform') as typeof import('../lib/stacks/platform');
/* eslint-enable @typescript-eslint/no-require-imports */

const families = Number(process.env.FLEET_FAMILIES ?? '50');
const app = new App();
buildPlatform(app, parseConfig(fleetConfig(prod, families), `config/prod.ts with ${families} families`));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
if (templateValidation !== undefined) {
  Validations.of(app).addPlugins(templateValidation);
}
app.synth();
