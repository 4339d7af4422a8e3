// The blueprint's prod environment with FLEET_FAMILIES model families cloned from its first one
// (config/fleet.ts), synthesized as bin/app.ts synthesizes an environment, cdk-nag included.
// For `npm run bench`: how synth time grows with the fleet.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks } from 'cdk-nag';
import { parseConfig } from '../config';
import { fleetConfig } from '../config/fleet';
import { prod } from '../config/prod';
import { buildPlatform } from '../lib/stacks/platform';

const families = Number(process.env.FLEET_FAMILIES ?? '50');
const app = new App();
buildPlatform(app, parseConfig(fleetConfig(prod, families), `config/prod.ts with ${families} families`));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new HIPAASecurityChecks(app), new NIST80053R5Checks(app));
app.synth();
