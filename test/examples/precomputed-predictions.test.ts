import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { nightlyChurnScores } from '../../examples/precomputed-predictions';
import { DataKey, InferenceStateTable, ModelApprovalPolicy, ModelPackageGroup } from '../../lib';
import { expectValidStateMachines } from '../support/asl';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'precomputed-predictions.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the nightlyChurnScores example exactly as the tests compile it', () => {
  const start = source.indexOf('export function nightlyChurnScores(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example scores JSON Lines nightly and loads the answers into the state table', () => {
  const stack = new Stack(new App(), 'Example', { env: { region: 'us-east-1', account: '123456789012' } });
  const key = new DataKey(stack, 'Key').key;
  const registry = new ModelPackageGroup(stack, 'Registry', { modelFamily: 'churn', approvalPolicy: ModelApprovalPolicy.MANUAL });
  const stateTable = new InferenceStateTable(stack, 'State', { encryptionKey: key });
  const batch = nightlyChurnScores(registry, stateTable, new s3.Bucket(stack, 'Runs', { encryptionKey: key }), key, new sns.Topic(stack, 'Topic'));
  expect(batch.precomputedLoader).toBeDefined();
  const template = Template.fromStack(stack);
  const [machine] = expectValidStateMachines(template.toJSON());
  const states = (machine.definition as any).States;
  expect(states['Score records'].Parameters.TransformInput.ContentType).toBe('application/jsonlines');
  expect(states['Load precomputed predictions'].Parameters.Payload).toMatchObject({ model: 'churn', featureGroup: 'customer-churn-features', recordIdField: 'customer_id', ttlSeconds: 172_800 });
  template.resourceCountIs('AWS::Scheduler::Schedule', 1);
});
