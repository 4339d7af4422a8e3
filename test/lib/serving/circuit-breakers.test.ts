// Circuit breakers and fallbacks as a CDK user meets them: RealTimeInferenceApi's circuitBreakers and
// addEndpoint's circuitBreaker and fallback, the route the handler reads, the alarm, and the config.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { loadConfig } from '../../../config';
import { dev } from '../../../config/dev';
import { AlarmSeverity, DataKey, ModelEndpoint, RealTimeInferenceApi, type AddEndpointOptions, type RealTimeInferenceApiProps } from '../../../lib';
import { configProblems } from '../../support/config-problems';
import { nagFindings, synthesizePlatform } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const capacity = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

function build(apiProps: Partial<RealTimeInferenceApiProps>, options: AddEndpointOptions) {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const topic = new sns.Topic(stack, 'Warnings', { masterKey: key });
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [
      { name: 'champion', weight: 9, model: { version: '7', image: IMAGE }, capacity },
      { name: 'simple', weight: 1, model: { version: 'logreg-2', image: IMAGE }, capacity },
    ],
  });
  const api = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key, alarmActions: { [AlarmSeverity.CRITICAL]: new SnsAction(topic), [AlarmSeverity.WARNING]: new SnsAction(topic) }, ...apiProps });
  const route = api.addEndpoint(endpoint, options);
  return { app, stack, api, route, template: Template.fromStack(stack) };
}

const routeValue = (template: Template) => JSON.stringify(Object.values(template.findResources('AWS::SSM::Parameter'))[0].Properties.Value);

describe('RealTimeInferenceApi circuitBreakers', () => {
  test('the route carries the breaker (defaults filled in) and the fallbacks; the handler gets the state table', () => {
    const { template, stack, api } = build({ circuitBreakers: true, predictionCache: {} }, { circuitBreaker: { coolDown: Duration.seconds(45) }, fallback: { variant: 'simple', staticAnswer: { score: 0.08 } } });
    const value = routeValue(template);
    expect(value).toContain('\\"breaker\\":{\\"windowSeconds\\":60,\\"failureRateThreshold\\":0.5,\\"minimumCalls\\":20,\\"coolDownSeconds\\":45,\\"probes\\":3}');
    expect(value).toContain('\\"fallback\\":{\\"variant\\":\\"simple\\",\\"static\\":{\\"score\\":0.08}}');
    // One table for the cache and the breakers.
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    const table = stack.resolve(api.stateTable!.table.tableName);
    const handler = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Environment?.Variables?.BREAKER_STATE_TABLE);
    expect(handler?.Properties.Environment.Variables).toMatchObject({ BREAKER_STATE_TABLE: table, PREDICTION_CACHE_TABLE: table });
  });

  test('a warning alarm fires while the breaker refuses calls, sent to the API\'s warning action', () => {
    const { template, route } = build({ circuitBreakers: true }, { circuitBreaker: {} });
    expect(route.circuitOpenAlarm).toBeDefined();
    const [alarm] = Object.values(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'CircuitOpenRejections' } }));
    expect(alarm.Properties).toMatchObject({ Threshold: 0, EvaluationPeriods: 1, Period: 60, Statistic: 'Sum', TreatMissingData: 'notBreaching', ComparisonOperator: 'GreaterThanThreshold' });
    expect(alarm.Properties.Dimensions).toEqual(expect.arrayContaining([{ Name: 'Model', Value: 'churn' }]));
    expect(alarm.Properties.AlarmActions).toHaveLength(1);
  });

  test('passes the three cdk-nag packs', () => {
    const { app, stack } = build({ circuitBreakers: true }, { circuitBreaker: {}, fallback: { staticAnswer: 0 } });
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });

  test('bad options are named, every one at once', () => {
    expect(() => build({}, { circuitBreaker: {} })).toThrow(/circuitBreaker: the API does not guard endpoints; give the RealTimeInferenceApi circuitBreakers: true/);
    expect(() =>
      build({ circuitBreakers: true }, { circuitBreaker: { window: Duration.millis(500), failureRateThreshold: 1, probes: 0 }, fallback: { variant: 'shadowy', staticAnswer: 'x'.repeat(3_000) } }),
    ).toThrow(
      /circuitBreaker\.window: must be whole seconds from 1 second to 1 hour; got 0\.5 seconds; circuitBreaker\.failureRateThreshold: must be above 0 and below 1; got 1; circuitBreaker\.probes: must be a whole number from 1 to 100; got 0; fallback\.variant: 'shadowy' is not a production variant of 'churn' \(champion, simple\); fallback\.staticAnswer: must be a JSON value of at most 2048 characters/,
    );
    expect(() => build({ circuitBreakers: true }, { fallback: {} })).toThrow(/fallback: must name a variant or a staticAnswer/);
  });
});

describe('config: api.circuitBreakers, a family\'s circuitBreaker and fallback', () => {
  test('prod guards churn and falls back to the base rate; its dashboard shows the breaker', () => {
    const config = loadConfig('prod');
    expect(config.api.circuitBreakers).toBe(true);
    const churn = config.models.find((model) => model.name === 'churn');
    expect(churn?.circuitBreaker).toEqual({ failureRateThreshold: 0.5, minimumCalls: 20, windowSeconds: 60, coolDownSeconds: 30, probes: 3 });
    expect(churn?.fallback).toEqual({ staticAnswer: { score: 0.08, basis: 'base churn rate' } });
    const { templates } = synthesizePlatform('prod');
    const bodies = Object.values(templates).flatMap((template) => Object.values<any>(template.toJSON().Resources).filter((resource) => resource.Type === 'AWS::CloudWatch::Dashboard').map((dashboard) => JSON.stringify(dashboard.Properties.DashboardBody)));
    expect(bodies.some((body) => body.includes('Circuit breakers: calls refused while open'))).toBe(true);
  });

  test('a breaker without api.circuitBreakers and a fallback variant the family lacks are both named in one run', () => {
    expect(
      configProblems(dev, (config) => {
        config.models[0].circuitBreaker = {};
        config.models[0].fallback = { variant: 'nobody' };
      }),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^models\[0\]\.circuitBreaker: needs api\.circuitBreakers: true/), expect.stringMatching(/^models\[0\]\.fallback\.variant: 'nobody' is not a production variant/)]));
  });
});
