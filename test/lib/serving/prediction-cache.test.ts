// The prediction cache as a CDK user meets it: RealTimeInferenceApi's predictionCache and addEndpoint's
// cacheTtl, the InferenceStateTable, what the handler is given, and the config that turns it on.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../../../config';
import { dev } from '../../../config/dev';
import { DataKey, ModelEndpoint, InferenceStateTable, RealTimeInferenceApi, type PredictionCacheOptions } from '../../../lib';
import { configProblems } from '../../support/config-problems';
import { nagFindings, synthesizePlatform } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

function build(cache: PredictionCacheOptions | undefined, cacheTtl: Duration | undefined = Duration.minutes(5)) {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [{ name: 'only', model: { version: '3.0.0', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
  });
  const api = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key, predictionCache: cache });
  api.addEndpoint(endpoint, { cacheTtl });
  return { app, stack, api, template: Template.fromStack(stack) };
}

describe('RealTimeInferenceApi predictionCache', () => {
  test('a CMK-encrypted on-demand table with a TTL attribute and no PITR, read and written by the inference function only', () => {
    const { api, stack, template } = build({});
    const [table0] = Object.values(template.findResources('AWS::DynamoDB::Table'));
    expect(table0.Properties).toMatchObject({
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^Key/), 'Arn'] } },
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
    });
    expect(table0.DeletionPolicy).toBe('Delete');
    const table = stack.resolve(api.stateTable!.table.tableName);
    const handler = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Environment?.Variables?.PREDICTION_CACHE_TABLE);
    expect(handler?.Properties.Environment.Variables).toMatchObject({ PREDICTION_CACHE_TABLE: table, PREDICTION_CACHE_MEMORY_MB: '32', PREDICTION_CACHE_TIMEOUT_MS: '100' });
    const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy')).flatMap((policy) => policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
    const dynamodb = statements.filter((statement) => JSON.stringify(statement.Action).includes('dynamodb:GetItem'));
    expect(dynamodb).toEqual([expect.objectContaining({ Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: { 'Fn::GetAtt': [expect.stringMatching(/InferenceState/), 'Arn'] } })]);
  });

  test('the route of a cached model carries its TTL; the request model accepts the cache flag', () => {
    const { template } = build({ memorySizeMiB: 0, sharedReadTimeout: Duration.millis(20) }, Duration.seconds(90));
    const route = Object.values(template.findResources('AWS::SSM::Parameter'))[0];
    expect(JSON.stringify(route.Properties.Value)).toContain('\\"cache\\":{\\"ttlSeconds\\":90}');
    const [requestModel] = Object.values(template.findResources('AWS::ApiGateway::Model'));
    expect(requestModel.Properties.Schema.properties.cache).toEqual({ type: 'boolean' });
  });

  test('a table the caller brings is used instead of a new one', () => {
    const app = new App();
    const stack = new Stack(app, 'Own', { env: { account: '111111111111', region: 'us-east-1' } });
    const key = new DataKey(stack, 'Key').key;
    const table = new InferenceStateTable(stack, 'Shared', { encryptionKey: key });
    const api = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key, predictionCache: {}, stateTable: table });
    expect(api.stateTable).toBe(table);
    Template.fromStack(stack).resourceCountIs('AWS::DynamoDB::Table', 1);
  });

  test('passes the three cdk-nag packs', () => {
    const { app, stack } = build({});
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });

  test('bad options name the prop: every problem at once', () => {
    expect(() => build({ memorySizeMiB: 1024, sharedReadTimeout: Duration.seconds(5) })).toThrow(
      'Api/Inference (RealTimeInferenceApi): invalid props:\n  - predictionCache.memorySizeMiB: must be a whole number from 0 to 256 (half the function\'s memory); got 1024\n  - predictionCache.sharedReadTimeout: must be from 1 ms to 1 second; got 5000 ms',
    );
    expect(() => build(undefined)).toThrow(/Churn\/InferenceRoute \(InferenceRoute\): cacheTtl: the API has no prediction cache; give the RealTimeInferenceApi predictionCache/);
    expect(() => build({}, Duration.millis(1500))).toThrow(/cacheTtl: must be whole seconds from 1 second to 1 day; got 1.5 seconds/);
    expect(() => build({}, Duration.days(2))).toThrow(/cacheTtl: must be whole seconds from 1 second to 1 day; got 172800 seconds/);
  });
});

describe('config: api.predictionCache and a model\'s cache', () => {
  test('staging and prod cache the churn family for five minutes', () => {
    for (const env of ['staging', 'prod'] as const) {
      const config = loadConfig(env);
      expect(config.api.predictionCache).toEqual({ memorySizeMiB: 32, sharedReadTimeoutMs: 100 });
      expect(config.models.find((model) => model.name === 'churn')?.cache).toEqual({ ttlSeconds: 300 });
    }
    expect(loadConfig('dev').api.predictionCache).toBeUndefined();
  });

  test('a model cache without api.predictionCache, and a TTL out of range, are both named in one run', () => {
    expect(
      configProblems(dev, (config) => {
        config.models[0].cache = { ttlSeconds: 0 };
        config.models.push({ ...structuredClone(config.models[0]), name: 'other', cache: { ttlSeconds: 60 } });
      }),
    ).toEqual(expect.arrayContaining([expect.stringMatching(/^models\[0\]\.cache\.ttlSeconds: /), expect.stringMatching(/^models\[1\]\.cache: needs api\.predictionCache/)]));
  });
});

test('the churn family\'s dashboard in prod shows its cache hit ratio and the shared tier\'s errors', () => {
  const { templates } = synthesizePlatform('prod');
  const dashboards = Object.values(templates).flatMap((template) => Object.values<any>(template.toJSON().Resources).filter((resource) => resource.Type === 'AWS::CloudWatch::Dashboard'));
  const bodies = dashboards.map((dashboard) => JSON.stringify(dashboard.Properties.DashboardBody));
  const cached = bodies.filter((body) => body.includes('Prediction cache: hit ratio'));
  expect(cached.length).toBeGreaterThan(0);
  expect(cached.join('')).toContain('PredictionCacheHits');
  expect(cached.join('')).toContain('PredictionCacheErrors');
});
