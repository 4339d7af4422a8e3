import { CreateFeatureGroupCommand, DescribeFeatureGroupCommand, SageMakerClient, type CreateFeatureGroupCommandInput } from '@aws-sdk/client-sagemaker';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { customerChurnFeatures } from '../../../config/feature-groups';
import type { FeatureGroupDefinition } from '../../../lib/features/feature-definition';
import { FeatureGroup } from '../../../lib/features/feature-group';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';

/**
 * The feature group CloudFormation would create, created through the SageMaker API (moto's control
 * plane) from the synthesized properties with their tokens replaced. The SDK serializes only the
 * members its model knows, so a store configuration written with the wrong key casing would vanish
 * here; the offline store coming back proves its shape. (moto does not describe the online store
 * back, so that one is checked on the template.)
 */
let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

test('the synthesized feature group is accepted by the SageMaker API and described back as defined', async () => {
  const stack = new Stack(new App(), 'Features', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new kms.Key(stack, 'Key');
  const group = new FeatureGroup(stack, 'Churn', {
    definition: { ...(customerChurnFeatures as FeatureGroupDefinition), onlineTtlHours: 24 },
    encryptionKey: key,
    offlineStoreBucket: new s3.Bucket(stack, 'Offline'),
  });
  const [resource] = Object.values(Template.fromStack(stack).findResources('AWS::SageMaker::FeatureGroup'));
  const tokens: Record<string, string> = {
    [stack.getLogicalId(key.node.defaultChild as kms.CfnKey)]: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    [stack.getLogicalId(group.offlineStoreRole.node.defaultChild as any)]: 'arn:aws:iam::123456789012:role/feature-store',
  };
  const concrete = JSON.parse(
    JSON.stringify(resource.Properties, (_key, value) => {
      if (value && typeof value === 'object' && 'Fn::GetAtt' in value) return tokens[value['Fn::GetAtt'][0]];
      if (value && typeof value === 'object' && 'Fn::Join' in value) return 's3://offline-bucket/feature-store/customer-churn-features';
      return value;
    }),
  );
  const input: CreateFeatureGroupCommandInput = { ...concrete, Tags: undefined };
  const sagemaker = new SageMakerClient(sdkTestConfig(moto.endpoint));
  await sagemaker.send(new CreateFeatureGroupCommand(input));
  const described = await sagemaker.send(new DescribeFeatureGroupCommand({ FeatureGroupName: 'customer-churn-features' }));
  expect(described).toMatchObject({
    RecordIdentifierFeatureName: 'customer_id',
    EventTimeFeatureName: 'event_time',
    OfflineStoreConfig: { TableFormat: 'Iceberg', S3StorageConfig: { S3Uri: 's3://offline-bucket/feature-store/customer-churn-features' } },
  });
  expect(described.FeatureDefinitions?.map((feature) => `${feature.FeatureName}:${feature.FeatureType}`)).toEqual([
    'customer_id:String',
    'event_time:String',
    'tenure_months:Integral',
    'monthly_charges:Fractional',
    'support_tickets_30d:Integral',
    'contract_type:String',
  ]);
});
