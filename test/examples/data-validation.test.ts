import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { validatedOrders } from '../../examples/data-validation';
import { DataKey, SecureBucket } from '../../lib';
import { expectValidStateMachines } from '../support/asl';
import { nagFindings } from '../support/platform';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'data-validation.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the validatedOrders example exactly as the tests compile it', () => {
  const start = source.indexOf('export function validatedOrders(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example validates in a loop and routes on the verdict; it passes the three cdk-nag packs', () => {
  const app = new App();
  const stack = new Stack(app, 'Example', { env: { account: '123456789012', region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const landing = new SecureBucket(stack, 'Landing', { encryptionKey: key }).bucket;
  const reports = new SecureBucket(stack, 'Reports', { encryptionKey: key }).bucket;
  validatedOrders(stack, landing, reports, key);
  const [machine] = expectValidStateMachines(Template.fromStack(stack).toJSON());
  const states = (machine.definition as any).States;
  expect(states['Validate dataset'].Parameters.Payload).toMatchObject({ 'datasetUri.$': '$.datasetUri', format: 'jsonl', 'continuation.$': '$.validation.continuation' });
  expect(states['Dataset valid?'].Choices.map((choice: any) => choice.Next)).toEqual(['Validate dataset', 'Orders valid']);
  expect(states['Dataset valid?'].Default).toBe('Orders invalid');
  app.synth();
  expect(nagFindings(stack)).toEqual([]);
});
