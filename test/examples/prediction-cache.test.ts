import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DataKey, ModelEndpoint } from '../../lib';
import { cachedScoring } from '../../examples/prediction-cache';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'prediction-cache.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the cachedScoring example exactly as the tests compile it', () => {
  const start = source.indexOf('export function cachedScoring(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example caches the endpoint\'s answers for five minutes in a table of its own', () => {
  const stack = new Stack(new App(), 'Example', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Scorer', {
    modelName: 'scorer',
    encryptionKey: key,
    variants: [{ name: 'only', model: { version: '1', image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1' }, capacity: { kind: 'serverless', memorySizeInMb: 2048, maxConcurrency: 5 } }],
  });
  const api = cachedScoring(stack, key, endpoint);
  expect(api.stateTable).toBeDefined();
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::DynamoDB::Table', 1);
  const route = Object.values(template.findResources('AWS::SSM::Parameter'))[0];
  expect(JSON.stringify(route.Properties.Value)).toContain('\\"cache\\":{\\"ttlSeconds\\":300}');
});
