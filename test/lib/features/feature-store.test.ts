import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import fc from 'fast-check';
import { featureStore } from '../../../examples/feature-store';
import { customerChurnFeatures } from '../../../config/feature-groups';
import { DataKey } from '../../../lib/core/data-key';
import { checkFeatureGroupDefinition, type FeatureGroupDefinition, FEATURE_TYPES } from '../../../lib/features/feature-definition';
import { renderFeatureCatalogue } from '../../../lib/features/feature-catalogue';
import { FeatureGroup } from '../../../lib/features/feature-group';
import { FeatureIngestion } from '../../../lib/features/feature-ingestion';
import { OfflineFeatureQueries } from '../../../lib/features/offline-feature-queries';
import { configuredFeatureGroups } from '../../../scripts/feature-catalogue';
import { expectValidStateMachines } from '../../support/asl';
import { nagFindings } from '../../support/platform';

const definition = customerChurnFeatures as FeatureGroupDefinition;

function stack() {
  const app = new App();
  const s = new Stack(app, 'Features', { env: { account: '123456789012', region: 'eu-west-1' } });
  const key = new DataKey(s, 'Key').key;
  const bucket = (id: string) => new s3.Bucket(s, id, { encryptionKey: key, enforceSSL: true });
  return { app, stack: s, key, offline: bucket('Offline'), landing: bucket('Landing'), topic: new sns.Topic(s, 'Topic', { masterKey: key }) };
}

describe('FeatureGroup', () => {
  test('creates online (KMS, TTL) and Iceberg offline stores (S3 with KMS, Glue), retained', () => {
    const { stack: s, key, offline } = stack();
    new FeatureGroup(s, 'Churn', { definition: { ...definition, onlineTtlHours: 48 }, encryptionKey: key, offlineStoreBucket: offline });
    const template = Template.fromStack(s);
    template.hasResource('AWS::SageMaker::FeatureGroup', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        FeatureGroupName: 'customer-churn-features',
        RecordIdentifierFeatureName: 'customer_id',
        EventTimeFeatureName: 'event_time',
        FeatureDefinitions: Match.arrayWith([{ FeatureName: 'tenure_months', FeatureType: 'Integral' }, { FeatureName: 'monthly_charges', FeatureType: 'Fractional' }]),
        OnlineStoreConfig: { EnableOnlineStore: true, SecurityConfig: { KmsKeyId: Match.anyValue() }, TtlDuration: { Unit: 'Hours', Value: 48 } },
        OfflineStoreConfig: Match.objectLike({ TableFormat: 'Iceberg', DisableGlueTableCreation: false, S3StorageConfig: Match.objectLike({ KmsKeyId: Match.anyValue() }) }),
        Tags: Match.arrayWith([{ Key: 'ml:feature-owner', Value: 'customer-analytics' }]),
      }),
    });
  });

  test('alarms on failed writes, slow online reads and throttling', () => {
    const { stack: s, key, offline, topic } = stack();
    const group = new FeatureGroup(s, 'Churn', {
      definition,
      encryptionKey: key,
      offlineStoreBucket: offline,
      alarms: { action: new SnsAction(topic), readLatencyP99Ms: 20 },
    });
    expect(group.alarms).toHaveLength(3);
    const template = Template.fromStack(s);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: '/aws/sagemaker/FeatureStore',
      MetricName: 'Latency',
      ExtendedStatistic: 'p99',
      Threshold: 20_000,
      Dimensions: Match.arrayWith([{ Name: 'OperationName', Value: 'GetRecord' }]),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Operation5XXErrors', AlarmDescription: Match.stringLikeRegexp('^\\[CRITICAL\\]') });
  });

  test('grants reads and writes on this group only', () => {
    const { stack: s, key, offline } = stack();
    const group = new FeatureGroup(s, 'Churn', { definition, encryptionKey: key, offlineStoreBucket: offline });
    const reader = new iam.Role(s, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    group.grantRead(reader);
    Template.fromStack(s).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['sagemaker:GetRecord', 'sagemaker:BatchGetRecord'],
            Resource: { 'Fn::Join': ['', Match.arrayWith([':sagemaker:eu-west-1:123456789012:feature-group/customer-churn-features'])] },
          }),
        ]),
      },
    });
  });

  test.each<[string, (d: any) => void, string]>([
    ['a duplicate feature name', (d) => d.features.push({ name: 'Tenure_Months', type: 'integral', description: 'again' }), "definition.features[6].name: 'Tenure_Months' duplicates features[2] ('tenure_months')"],
    ['an unsupported type', (d) => (d.features[2].type = 'boolean'), "definition.features[2].type: must be one of string, integral, fractional; got 'boolean'"],
    ['a missing event-time feature', (d) => (d.features = d.features.filter((f: any) => f.name !== 'event_time')), "definition.eventTime: 'event_time' is not one of the features; every feature group needs an event-time feature"],
    ['a reserved name', (d) => (d.features[5].name = 'write_time'), "definition.features[5].name: 'write_time' is reserved by Feature Store"],
  ])('refuses %s at synth, naming the field', (_name, mutate, message) => {
    const { stack: s, key, offline } = stack();
    const broken = structuredClone(definition) as any;
    mutate(broken);
    expect(() => new FeatureGroup(s, 'Churn', { definition: broken, encryptionKey: key, offlineStoreBucket: offline })).toThrow(message);
    expect(() => new FeatureGroup(s, 'Again', { definition: broken, encryptionKey: key, offlineStoreBucket: offline })).toThrow(/^Features\/Again \(FeatureGroup\): invalid definition:/);
  });

  test('every definition with unique, well-formed names and an event time is accepted, whatever its types', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}[a-z0-9]$/).filter((n) => !['is_deleted', 'write_time', 'api_invocation_time'].includes(n));
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ name, type: fc.constantFrom(...FEATURE_TYPES) }), { minLength: 0, maxLength: 20, selector: (f) => f.name.toLowerCase() }), (extra) => {
        const features = [
          { name: 'id', type: 'string' as const, description: 'id' },
          { name: 'ts', type: 'fractional' as const, description: 'time' },
          ...extra.filter((f) => f.name !== 'id' && f.name !== 'ts').map((f) => ({ ...f, description: 'x' })),
        ];
        expect(checkFeatureGroupDefinition({ ...definition, recordIdentifier: 'id', eventTime: 'ts', features })).toEqual([]);
      }),
    );
  });
});

describe('FeatureIngestion', () => {
  test('feeds the speed layer from an encrypted on-demand stream with partial batch failures and an on-failure queue', () => {
    const { stack: s, key, offline, landing, topic } = stack();
    const group = new FeatureGroup(s, 'Churn', { definition, encryptionKey: key, offlineStoreBucket: offline });
    new FeatureIngestion(s, 'Ingestion', { featureGroups: [group], landingBucket: landing, encryptionKey: key, notificationTopic: topic });
    const template = Template.fromStack(s);
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamModeDetails: { StreamMode: 'ON_DEMAND' }, StreamEncryption: { EncryptionType: 'KMS', KeyId: Match.anyValue() } });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
    template.resourceCountIs('AWS::SQS::Queue', 2);
    const [workflow] = expectValidStateMachines(template.toJSON());
    const states = (workflow.definition as any).States;
    expect(states['Ingest chunks']).toMatchObject({ Type: 'Map', MaxConcurrency: 10, ItemReader: { Resource: 'arn:aws:states:::s3:listObjectsV2' } });
    expect(states['Check config.format value']).toBeDefined();
  });

  test('the Feature Store constructs are clean under cdk-nag', () => {
    const { app, stack: s, key, offline, landing, topic } = stack();
    const group = new FeatureGroup(s, 'Churn', { definition, encryptionKey: key, offlineStoreBucket: offline });
    new FeatureIngestion(s, 'Ingestion', { featureGroups: [group], landingBucket: landing, encryptionKey: key, notificationTopic: topic, alarmAction: undefined });
    new OfflineFeatureQueries(s, 'Queries', { encryptionKey: key });
    app.synth();
    const ours = nagFindings(app).filter((f) => !/\/(Offline|Landing|Topic)\//.test(f.resource));
    expect(ours.map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });
});

describe('OfflineFeatureQueries', () => {
  test('encrypts and enforces query results, publishes metrics and caps the data a query scans', () => {
    const { stack: s, key } = stack();
    new OfflineFeatureQueries(s, 'Queries', { encryptionKey: key });
    Template.fromStack(s).hasResourceProperties('AWS::Athena::WorkGroup', {
      WorkGroupConfiguration: Match.objectLike({
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: 1024 ** 4,
        ResultConfiguration: Match.objectLike({ EncryptionConfiguration: { EncryptionOption: 'SSE_KMS', KmsKey: Match.anyValue() } }),
      }),
    });
  });
});

describe('the feature catalogue', () => {
  test('in the README is the one generated from the config (run `npm run catalogue` when it is not)', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(renderFeatureCatalogue(configuredFeatureGroups()));
  });

  test('the README example synthesizes', () => {
    const { stack: s, key, offline, landing, topic } = stack();
    featureStore(s, key, topic, offline, landing);
    expect(Template.fromStack(s).findResources('AWS::SageMaker::FeatureGroup')).not.toEqual({});
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const source = readFileSync(join(__dirname, '..', '..', '..', 'examples', 'feature-store.ts'), 'utf8');
    const start = source.indexOf('export function featureStore(');
    expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
  });
});
