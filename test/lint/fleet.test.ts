// A fleet of 50 model families in prod: every stack within CloudFormation's, IAM's and Lambda's
// deploy-time limits, the shared stacks free of per-family resources, and cfn-lint clean.
//
// This is also where prod is linted: its shared stacks are those of the one-family prod, and each
// family stack is the churn family's under another name.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { parseConfig } from '../../config';
import { fleetConfig, fleetFamilyName } from '../../config/fleet';
import { prod } from '../../config/prod';
import { buildPlatform, familyStackName, type MlPlatformStacks } from '../../lib/stacks/platform';
import { REPO_ROOT, run } from '../support/cli';
import { deployLimitProblems, MAX_RESOURCES } from '../support/limits';

const FAMILIES = 50;
const workdir = mkdtempSync(join(tmpdir(), 'fleet-'));
afterAll(() => rmSync(workdir, { recursive: true, force: true }));

let stacks: MlPlatformStacks;
let templates: Record<string, any>;
const SHARED = ['Foundation', 'Features', 'Serving', 'Experiments', 'Lifecycle', 'Rag', 'Observability'].map((suffix) => `MlPlatform-prod-${suffix}`);
const family = (index: number) => familyStackName('prod', fleetFamilyName('churn', index));

beforeAll(() => {
  const config = parseConfig(fleetConfig(prod, FAMILIES), `config/prod.ts with ${FAMILIES} families`);
  // Path metadata and the CDKMetadata resource, as the cdk CLI writes them: cfn-lint recognises a CDK
  // template by the latter (and leaves W3010 to the VPC construct, which places subnets by zone).
  const app = new App({ context: { ...require('../../cdk.json').context, 'aws:cdk:enable-path-metadata': true, 'aws:cdk:version-reporting': true }, outdir: workdir });
  stacks = buildPlatform(app, config);
  const assembly = app.synth();
  templates = Object.fromEntries(assembly.stacks.map((stack) => [stack.stackName, stack.template]));
}, 240_000);

test('is the shared stacks and one stack per family', () => {
  expect(Object.keys(templates).sort()).toEqual([...SHARED, ...Array.from({ length: FAMILIES }, (_, index) => family(index))].sort());
  expect(stacks.families.map((stack) => stack.modelName)).toEqual(Array.from({ length: FAMILIES }, (_, index) => `churn-${index}`));
});

test('keeps every stack within the deploy-time limits (template size, resources, outputs, Lambda environment, IAM policy sizes)', () => {
  expect(Object.entries(templates).flatMap(([stackName, template]) => deployLimitProblems(stackName, template))).toEqual([]);
  // Far from the edge: a family has room for the patterns still to come.
  expect(Object.keys(templates[family(FAMILIES - 1)].Resources).length).toBeLessThan(MAX_RESOURCES / 2);
});

test('holds nothing of any one family in the shared stacks but the overview, so they do not grow with the fleet', () => {
  // One exception: S3 writes a family's data-capture access logs into the shared access-logs bucket,
  // whose policy names each source prefix (about 120 bytes a family, of the policy's 20 KB).
  const accessLogsPolicy = (_logicalId: string, resource: any) => resource.Type === 'AWS::S3::BucketPolicy' && JSON.stringify(resource.Properties.Bucket).includes('AccessLogs');
  for (const stackName of SHARED.filter((name) => !name.endsWith('-Observability'))) {
    const resources = Object.entries<any>(templates[stackName].Resources).filter(([logicalId, resource]) => !accessLogsPolicy(logicalId, resource));
    expect({ stackName, family: /churn-\d+/.exec(JSON.stringify(resources))?.[0] }).toEqual({ stackName, family: undefined });
  }
  const policy = Object.entries<any>(templates['MlPlatform-prod-Foundation'].Resources).find(([logicalId, resource]) => accessLogsPolicy(logicalId, resource))![1];
  expect(JSON.stringify(policy).length).toBeLessThan(20_480 / 2);
  // Each family is the same template under its own name: the same resources, the same size but for
  // names (generated names are cut to their service's length limits, so a few bytes differ).
  const types = (index: number) => Object.values<any>(templates[family(index)].Resources).map((resource) => resource.Type).sort();
  expect(types(FAMILIES - 1)).toEqual(types(0));
  const bytes = (index: number) => JSON.stringify(templates[family(index)]).length;
  expect(Math.abs(bytes(FAMILIES - 1) - bytes(0))).toBeLessThan(bytes(0) / 100);
});

test('routes every family through one SSM parameter each and one InvokeEndpoint statement, whatever the fleet size', () => {
  const serving = JSON.stringify(templates['MlPlatform-prod-Serving'].Resources);
  expect(serving.match(/"sagemaker:InvokeEndpoint"/g)).toHaveLength(1);
  const prefix = stacks.serving.inferenceApi.routeParameterPrefix;
  for (const index of [0, FAMILIES - 1]) {
    const parameters = Object.values<any>(templates[family(index)].Resources).filter((resource) => resource.Type === 'AWS::SSM::Parameter');
    expect(parameters.map((parameter) => parameter.Properties.Name)).toEqual([`${prefix}churn-${index}`]);
  }
});

test('lists every family in the overview: traffic, errors and latency top-N, and each family health alarm', () => {
  const overview = JSON.stringify(templates['MlPlatform-prod-Observability']);
  for (const index of [0, FAMILIES - 1]) {
    const health = stacks.families[index].healthAlarm;
    expect(overview).toContain(stacks.families[index].getLogicalId(health.node.defaultChild as any));
  }
  expect(overview).toContain('SELECT SUM(Predictions)');
});

test('passes cfn-lint: the shared stacks, and the first and last of the family stacks, which differ only in their name', () => {
  const files = [...SHARED, family(0), family(FAMILIES - 1)].map((stackName) => join(workdir, `${stackName}.template.json`));
  const lint = run('cfn-lint', ['--format', 'parseable', ...files], { cwd: REPO_ROOT });
  expect(lint.stdout + lint.stderr).toBe('');
  expect(lint.status).toBe(0);
}, 120_000);
