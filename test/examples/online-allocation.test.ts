import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { offersBandit } from '../../examples/online-allocation';
import { PredictionLog } from '../../lib';
import { expectValidStateMachines } from '../support/asl';
import { nagFindings } from '../support/platform';
import { experimentStack } from '../lib/experiments/fixtures';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'online-allocation.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the offersBandit example exactly as the tests compile it', () => {
  const start = source.indexOf('export function offersBandit(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example decides hourly with its guard rails, watches the endpoint alarms, and passes the three cdk-nag packs', () => {
  const { app, stack, key, topic, endpoint } = experimentStack();
  const log = new PredictionLog(stack, 'Log', { encryptionKey: key });
  const bandit = offersBandit(stack, endpoint, log, topic, key);
  expect(bandit.variantNames).toEqual(['champion', 'challenger']);
  const template = Template.fromStack(stack).toJSON();
  const [machine] = expectValidStateMachines(template);
  const states = (machine!.definition as any).States;
  expect(states['Load defaults'].Parameters).toMatchObject({ outcomeDelaySeconds: 86400, bakeSeconds: 900, settings: { strategy: 'thompson', guardRails: { minShare: 0.1, maxStep: 0.1, minObservations: 200 } } });
  expect(states['Read rollback alarms'].Parameters.AlarmNames.length).toBeGreaterThan(0);
  app.synth();
  expect(nagFindings(stack)).toEqual([]);
});
