import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { fraudFederation, fraudSilo } from '../../examples/federated-learning';
import { DataKey, ModelPackageGroup, SecureBucket } from '../../lib';
import { expectValidStateMachines } from '../support/asl';
import { nagFindings } from '../support/platform';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'federated-learning.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test.each(['fraudSilo', 'fraudFederation'])('the README shows %s exactly as the tests compile it', (name) => {
  const start = source.indexOf(`export function ${name}(`);
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('a silo stack and the coordinator stack synthesize, with valid ASL, and pass the three cdk-nag packs', () => {
  const app = new App();
  const siloStack = new Stack(app, 'BankA', { env: { account: '444455556666', region: 'eu-west-1' } });
  const siloKey = new DataKey(siloStack, 'Key').key;
  const records = new SecureBucket(siloStack, 'Records', { encryptionKey: siloKey }).bucket;
  fraudSilo(siloStack, records);

  const platform = new Stack(app, 'Platform', { env: { account: '111122223333', region: 'eu-west-1' } });
  const key = new DataKey(platform, 'Key').key;
  const state = new SecureBucket(platform, 'State', { encryptionKey: key }).bucket;
  const topic = new sns.Topic(platform, 'Topic', { masterKey: key, enforceSSL: true });
  const registry = new ModelPackageGroup(platform, 'Registry', { modelFamily: 'fraud', removalPolicy: RemovalPolicy.DESTROY });
  const coordinator = fraudFederation(platform, registry, state, key, topic);
  expect(Object.keys(Template.fromStack(siloStack).findResources('AWS::IAM::Role', { Properties: { RoleName: 'fraud-federated-coordinator' } }))).toHaveLength(1);
  const [machine] = expectValidStateMachines(Template.fromStack(platform).toJSON());
  const spec = (machine.definition as any).States['Start federation'].Parameters.Payload.federation;
  expect(spec).toMatchObject({ minClients: 2, aggregation: { aggregator: 'median' }, convergence: { maxRounds: 30, patience: 4 } });
  // The coordinator assumes the role the silo created, by the name they share.
  expect(coordinator.clientRoleArns[0]).toContain(':iam::444455556666:role/fraud-federated-coordinator');
  app.synth();
  expect(nagFindings(siloStack)).toEqual([]);
  expect(nagFindings(platform)).toEqual([]);
});
