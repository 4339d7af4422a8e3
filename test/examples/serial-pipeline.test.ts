import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DataKey, SecureBucket } from '../../lib';
import { preprocessedScoring } from '../../examples/serial-pipeline';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'serial-pipeline.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the preprocessedScoring example exactly as the tests compile it', () => {
  const start = source.indexOf('export function preprocessedScoring(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example serves one model of three containers, run in order', () => {
  const stack = new Stack(new App(), 'Example', { env: { account: '123456789012', region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const artifacts = new SecureBucket(stack, 'Artifacts', { encryptionKey: key }).bucket;
  const endpoint = preprocessedScoring(stack, key, artifacts);
  expect(endpoint.variants.map((variant) => variant.containerCount)).toEqual([3]);
  const [model] = Object.values(Template.fromStack(stack).findResources('AWS::SageMaker::Model'));
  expect(model.Properties.InferenceExecutionConfig).toEqual({ Mode: 'Serial' });
  expect(model.Properties.Containers.map((container: { ContainerHostname: string }) => container.ContainerHostname)).toEqual(['preprocess', 'model', 'postprocess']);
});
