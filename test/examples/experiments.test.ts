import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../lib';
import { abTest, championChallenger, shadowMode } from '../../examples/experiments';
import { expectValidStateMachines } from '../support/asl';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'experiments.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

function body(name: string): string {
  const start = source.indexOf(`export function ${name}(`);
  const end = source.indexOf('\n}\n', start) + 2;
  return source.slice(start, end).trim();
}

test.each(['shadowMode', 'abTest', 'championChallenger'])('the README shows the %s example exactly as the tests compile it', (name) => {
  expect(readme).toContain(body(name));
});

test('the experiment examples synthesize valid workflows', () => {
  const stack = new Stack(new App(), 'Examples', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key });
  shadowMode(stack, key, topic, new s3.Bucket(stack, 'Reports', { encryptionKey: key }));
  abTest(stack, key, topic);
  championChallenger(stack, key, topic, topic);
  expect(expectValidStateMachines(Template.fromStack(stack).toJSON())).toHaveLength(3);
});
