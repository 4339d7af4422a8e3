// Every construct with stateful resources takes `removalPolicy`, as aws-cdk-lib's own do; the `retain`
// flag some took before still works (deprecated) and means the same: `retain: false` is DESTROY.
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AccessLogsBucket, DataKey, FeatureGroup, ModelEndpoint, OfflineFeatureQueries, PredictionLog, SecureBucket } from '../../../lib';
import type { FeatureGroupDefinition } from '../../../lib/features/feature-definition';
import { customerChurnFeatures } from '../../../config/feature-groups';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
type Removal = { removalPolicy?: RemovalPolicy; retain?: boolean };

const constructs: Array<[string, (stack: Stack, key: kms.IKey, removal: Removal) => void]> = [
  ['SecureBucket', (stack, key, removal) => new SecureBucket(stack, 'It', { encryptionKey: key, ...removal })],
  ['AccessLogsBucket', (stack, _key, removal) => new AccessLogsBucket(stack, 'It', removal)],
  ['PredictionLog', (stack, key, removal) => new PredictionLog(stack, 'It', { encryptionKey: key, ...removal })],
  ['OfflineFeatureQueries', (stack, key, removal) => new OfflineFeatureQueries(stack, 'It', { encryptionKey: key, ...removal })],
  [
    'FeatureGroup',
    (stack, key, removal) =>
      new FeatureGroup(stack, 'It', { definition: customerChurnFeatures as FeatureGroupDefinition, encryptionKey: key, offlineStoreBucket: new s3.Bucket(stack, 'Offline'), ...removal }),
  ],
  [
    'ModelEndpoint (dataCapture)',
    (stack, key, removal) =>
      new ModelEndpoint(stack, 'It', {
        modelName: 'churn',
        encryptionKey: key,
        variants: [{ name: 'a', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
        dataCapture: removal,
      }),
  ],
];

function template(build: (stack: Stack, key: kms.IKey, removal: Removal) => void, removal: Removal) {
  const stack = new Stack(new App(), 'Removal', { env: { account: '111111111111', region: 'us-east-1' } });
  build(stack, new DataKey(stack, 'Key').key, removal);
  return Template.fromStack(stack).toJSON();
}

const policies = (json: Record<string, unknown>) =>
  Object.values(json.Resources as Record<string, { Type: string; DeletionPolicy?: string }>)
    // Keys are the caller's here; the declared weights of an endpoint hold no data (deleting one changes nothing).
    .filter((resource) => resource.Type !== 'AWS::KMS::Key' && resource.Type !== 'Custom::EndpointWeights')
    .map((resource) => `${resource.Type} ${resource.DeletionPolicy ?? '-'}`)
    .filter((line) => !line.endsWith(' -'))
    .sort();

describe.each(constructs)('%s', (_name, build) => {
  test('removalPolicy: DESTROY is retain: false, RETAIN is retain: true and the default', () => {
    const destroyed = template(build, { removalPolicy: RemovalPolicy.DESTROY });
    expect(destroyed).toEqual(template(build, { retain: false }));
    expect(policies(destroyed).some((line) => line.endsWith(' Delete'))).toBe(true);
    const kept = template(build, { removalPolicy: RemovalPolicy.RETAIN });
    expect(kept).toEqual(template(build, { retain: true }));
    expect(kept).toEqual(template(build, {}));
    expect(policies(kept).every((line) => line.endsWith(' Retain'))).toBe(true);
  });

  test('removalPolicy and retain that disagree fail, naming both', () => {
    expect(() => template(build, { removalPolicy: RemovalPolicy.DESTROY, retain: true })).toThrow(
      /invalid props:\n  - removalPolicy and retain disagree \(destroy, retain: true\); give removalPolicy only \(retain is deprecated\)/,
    );
  });
});
