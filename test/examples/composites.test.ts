import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { fraudComposites } from '../../examples/composites';
import { CompositeRouteSchema } from '../../lambda/shared/composite';
import { DataKey, ModelEndpoint, RealTimeInferenceApi } from '../../lib';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'composites.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

test('the README shows the fraudComposites example exactly as the tests compile it', () => {
  const start = source.indexOf('export function fraudComposites(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example serves three composites whose routes the handler accepts', () => {
  const app = new App();
  const stack = new Stack(app, 'Example', { env: { account: '123456789012', region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const api = new RealTimeInferenceApi(stack, 'Api', { encryptionKey: key });
  const route = (name: string, variants: string[]) =>
    api.addEndpoint(
      new ModelEndpoint(stack, name, {
        modelName: name,
        encryptionKey: key,
        variants: variants.map((variant) => ({ name: variant, weight: 1, model: { version: '1', image: IMAGE }, capacity: { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 } })),
      }),
    );
  fraudComposites(api, route('fraud-lite', ['only']), route('fraud-deep', ['champion', 'challenger']), route('fraud-ranker', ['only']));
  app.synth();
  expect(api.compositeNames).toEqual(['fraud-blend', 'fraud-tiered', 'fraud-review-queue']);
  const documents = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Parameter'))
    .filter((parameter) => String(parameter.Properties.Description).startsWith('Route of composite model'))
    .map((parameter) => CompositeRouteSchema.parse(JSON.parse(parameter.Properties.Value)).composite);
  expect(documents.map((document) => document.kind).sort()).toEqual(['cascade', 'chain', 'ensemble']);
  expect(documents.find((document) => document.kind === 'ensemble')).toMatchObject({ combiner: 'weighted-mean', quorum: 2, timeoutMs: 800, members: [{ model: 'fraud-deep', variant: 'champion', weight: 2 }, { model: 'fraud-deep', variant: 'challenger' }, { model: 'fraud-lite' }] });
});
