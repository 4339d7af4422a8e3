import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { guardedScoring, precomputedScoring } from '../../examples/resilient-serving';
import { ModelRouteSchema } from '../../lambda/shared/inference';
import { DataKey, ModelEndpoint } from '../../lib';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'resilient-serving.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

test.each(['guardedScoring', 'precomputedScoring'])('the README shows %s exactly as the tests compile it', (name) => {
  const start = source.indexOf(`export function ${name}(`);
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

function world() {
  const stack = new Stack(new App(), 'Example', { env: { account: '123456789012', region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const capacity = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [
      { name: 'champion', weight: 1, model: { version: '3', image: IMAGE }, capacity },
      { name: 'simple', weight: 0, model: { version: 'lr-1', image: IMAGE }, capacity },
    ],
  });
  return { stack, key, endpoint };
}

/** The route document, with the endpoint's name token written as `token`, parsed by the handler's schema. */
function routeOf(stack: Stack) {
  const value = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Parameter'))[0].Properties.Value;
  const text = typeof value === 'string' ? value : value['Fn::Join'][1].map((part: unknown) => (typeof part === 'string' ? part : 'token')).join('');
  return ModelRouteSchema.parse(JSON.parse(text));
}

test('guardedScoring routes churn with its breaker and both fallbacks', () => {
  const { stack, key, endpoint } = world();
  guardedScoring(stack, key, endpoint);
  expect(routeOf(stack)).toMatchObject({
    breaker: { failureRateThreshold: 0.3, minimumCalls: 50, windowSeconds: 120, coolDownSeconds: 20, probes: 3 },
    fallback: { variant: 'simple', static: { score: 0.08, basis: 'base churn rate' } },
  });
});

test('precomputedScoring serves the loaded answers for 26 hours', () => {
  const { stack, key, endpoint } = world();
  const api = precomputedScoring(stack, key, endpoint);
  expect(routeOf(stack).precomputed).toEqual({ maxAgeSeconds: 26 * 3600 });
  expect(api.stateTable).toBeDefined();
});
