// precomputedPredictions on RealTimeInferenceApi and precomputedMaxAge on a route: the handler's
// environment and grants, the route document (checked with the handler's own schema), the problems named.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { formatIssues, ModelRouteSchema } from '../../../lambda/shared/inference';
import { DataKey, ModelEndpoint, RealTimeInferenceApi, type AddEndpointOptions } from '../../../lib';
import { staging } from '../../../config/staging';
import { expectValidStateMachines } from '../../support/asl';
import { configProblems } from '../../support/config-problems';
import { nagFindings, synthesizePlatform } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

/** A template string value with its tokens (the endpoint's name) written as `token`. */
const joined = (value: unknown): string =>
  typeof value === 'string' ? value : (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : 'token')).join('');

function build(api: { precomputedPredictions?: boolean }, options: AddEndpointOptions) {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Churn', { modelName: 'churn', encryptionKey: key, variants: [{ name: 'champion', weight: 1, model: { version: '3', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }] });
  const inference = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key, ...api });
  const route = inference.addEndpoint(endpoint, options);
  return { app, stack, api: inference, route };
}

describe('precomputed predictions in the constructs', () => {
  test('the handler reads the state table; the route carries the age the handler accepts', () => {
    const { app, stack, api, route } = build({ precomputedPredictions: true }, { precomputedMaxAge: Duration.hours(26) });
    const template = Template.fromStack(stack);
    const tableId = stack.getLogicalId(api.stateTable!.table.node.defaultChild as any);
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ PRECOMPUTED_TABLE: { Ref: tableId } }) } });
    const document = JSON.parse(joined(Object.values(template.findResources('AWS::SSM::Parameter'))[0].Properties.Value));
    expect(document.precomputed).toEqual({ maxAgeSeconds: 93_600 });
    const parsed = ModelRouteSchema.safeParse(document);
    expect(parsed.success ? '' : formatIssues(parsed.error.issues, '(root)')).toBe('');
    expect(route.precomputedMaxAge?.toHours()).toBe(26);
    expect(api.precomputedModelNames).toEqual(['churn']);
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });

  test('a route without the API\'s precomputedPredictions, and an age out of range, are both named', () => {
    expect(() => build({}, { precomputedMaxAge: Duration.days(31) })).toThrow(
      /precomputedMaxAge: must be whole seconds from 1 second to 30 days; got 2678400 seconds; precomputedMaxAge: the API serves no precomputed predictions; give the RealTimeInferenceApi precomputedPredictions: true/,
    );
    expect(() => build({ precomputedPredictions: true }, { precomputedMaxAge: Duration.millis(1500) })).toThrow(/precomputedMaxAge: must be whole seconds from 1 second to 30 days; got 1.5 seconds/);
  });

  test('an API without it sets no table for the handler', () => {
    const { stack } = build({}, {});
    const handlers = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function')).filter((fn) => fn.Properties.Environment?.Variables?.ROUTES_PARAMETER_PREFIX !== undefined);
    expect(handlers).toHaveLength(1);
    expect(handlers[0].Properties.Environment.Variables).not.toHaveProperty('PRECOMPUTED_TABLE');
  });
});

describe('config: api.precomputedPredictions and lifecycle.batchInference.precomputed', () => {
  test('staging loads the nightly churn scores and serves them for 26 hours', () => {
    const platform = synthesizePlatform('staging');
    const churn = platform.stacks.families.find((family) => family.modelName === 'churn')!;
    expect(churn.route.precomputedMaxAge?.toHours()).toBe(26);
    const batch = churn.lifecycle!.batchInference!;
    expect(batch.precomputedLoader).toBeDefined();
    const [machine] = expectValidStateMachines(platform.templates[churn.stackName].toJSON()).filter((found) => found.logicalId.startsWith('BatchInferencechurn'));
    const states = (machine.definition as any).States;
    expect(states['Load precomputed predictions'].Parameters.Payload).toMatchObject({ featureGroup: 'customer-churn-features', recordIdField: '0', format: 'csv', ttlSeconds: 72 * 3600, model: 'churn' });
    const serving = platform.templates[platform.stacks.serving.stackName];
    serving.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ PRECOMPUTED_TABLE: Match.anyValue() }) } });
  });

  test('its problems are named at once: no API switch, an unknown feature group, a TTL below the age, a CSV id that is no column', () => {
    expect(
      configProblems(staging, (config) => {
        config.api.precomputedPredictions = false;
        config.models[0].lifecycle.batchInference.precomputed = { featureGroup: 'orders', recordIdField: 'customer_id', maxAgeHours: 48, ttlHours: 24 };
      }),
    ).toEqual([
      'models[0].lifecycle.batchInference.precomputed: needs api.precomputedPredictions: true (the API serves the loaded answers from its state table)',
      "models[0].lifecycle.batchInference.precomputed.featureGroup: 'orders' is not a feature group of featureStore (customer-churn-features): requests name their entity by one",
      'models[0].lifecycle.batchInference.precomputed.ttlHours: must be at least maxAgeHours (48): an answer deleted before it ages out serves no fallback; got 24',
      "models[0].lifecycle.batchInference.precomputed.recordIdField: must be a column number (0-999) of the joined, filtered CSV row with contentType text/csv, e.g. '0' with outputFilter '$[0,-1]'; got 'customer_id'",
    ]);
  });
});
