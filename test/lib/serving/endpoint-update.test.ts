import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadConfig, type PlatformConfig } from '../../../config';
import { buildPlatform, platformStacks } from '../../../lib/stacks/platform';

/**
 * SageMaker models and endpoint configurations are immutable: CloudFormation replaces them on any
 * change. The endpoint, the buckets and the keys must instead be updated in place, so that a
 * weight, an instance count or a model version can change without downtime or data loss.
 */
const STATEFUL_TYPES = ['AWS::SageMaker::Endpoint', 'AWS::S3::Bucket', 'AWS::KMS::Key', 'AWS::Logs::LogGroup', 'AWS::SNS::Topic', 'AWS::ApiGateway::RestApi'];
/** Properties of the stateful types whose change makes CloudFormation replace the resource. */
const REPLACING_PROPERTIES: Record<string, string[]> = {
  'AWS::SageMaker::Endpoint': ['EndpointName'],
  'AWS::S3::Bucket': ['BucketName', 'ObjectLockEnabled'],
  'AWS::KMS::Key': ['KeySpec', 'MultiRegion'],
  'AWS::Logs::LogGroup': ['LogGroupName'],
  'AWS::SNS::Topic': ['TopicName', 'FifoTopic'],
  'AWS::ApiGateway::RestApi': [],
};

function templates(config: PlatformConfig): Record<string, any> {
  const app = new App({ context: require('../../../cdk.json').context });
  const stacks = buildPlatform(app, config);
  const out: Record<string, any> = {};
  for (const stack of platformStacks(stacks)) out[stack.stackName] = Template.fromStack(stack).toJSON();
  return out;
}

function expectUpdatedInPlace(before: Record<string, any>, after: Record<string, any>) {
  for (const [stackName, template] of Object.entries(before)) {
    for (const [logicalId, resource] of Object.entries<any>(template.Resources)) {
      if (!STATEFUL_TYPES.includes(resource.Type)) continue;
      const next = after[stackName].Resources[logicalId];
      expect({ logicalId, type: next?.Type }).toEqual({ logicalId, type: resource.Type });
      for (const property of REPLACING_PROPERTIES[resource.Type]) {
        expect({ logicalId, property, value: next.Properties?.[property] }).toEqual({ logicalId, property, value: resource.Properties?.[property] });
      }
    }
  }
}

const endpointConfigs = (all: Record<string, any>) =>
  Object.values<any>(all['MlPlatform-prod-churn'].Resources).filter((r) => r.Type === 'AWS::SageMaker::EndpointConfig');

describe('changing the prod endpoint', () => {
  const base = loadConfig('prod');
  const before = templates(base);

  test.each<[string, (config: any) => void]>([
    ['a variant weight', (c) => (c.models[0].variants[0].weight = 3)],
    ['an instance count', (c) => (c.models[0].variants[0].capacity.initialInstanceCount = 4)],
    ['the model version', (c) => (c.models[0].variants[0].model = { ...c.models[0].variants[0].model, version: '1.0.1', modelData: { key: 'churn/1.0.1/model.tar.gz' } })],
    ['the shadow sampling percentage', (c) => (c.models[0].shadowVariants[0].samplingPercentage = 50)],
  ])('%s updates the endpoint in place and replaces only its immutable configuration', (_name, change) => {
    const config = structuredClone(base) as any;
    change(config);
    const after = templates(config);
    expect(endpointConfigs(after)).not.toEqual(endpointConfigs(before));
    expectUpdatedInPlace(before, after);
    // The endpoint configuration is unnamed, so CloudFormation can create its replacement before
    // switching the endpoint to it and deleting the old one.
    for (const endpointConfig of endpointConfigs(after)) expect(endpointConfig.Properties.EndpointConfigName).toBeUndefined();
  });

  test('the check notices a replacement, so passing means something', () => {
    const after = structuredClone(before);
    const endpoint = Object.values<any>(after['MlPlatform-prod-churn'].Resources).find((r) => r.Type === 'AWS::SageMaker::Endpoint');
    endpoint.Properties.EndpointName = 'renamed';
    expect(() => expectUpdatedInPlace(before, after)).toThrow();
  });
});

test('prod retains every stateful resource and dev does not', () => {
  for (const [envName, policy] of [['prod', 'Retain'], ['dev', 'Delete']] as const) {
    const all = templates(loadConfig(envName));
    for (const template of Object.values<any>(all)) {
      for (const [logicalId, resource] of Object.entries<any>(template.Resources)) {
        if (['AWS::S3::Bucket', 'AWS::KMS::Key', 'AWS::Logs::LogGroup'].includes(resource.Type)) {
          expect({ envName, logicalId, policy: resource.DeletionPolicy }).toEqual({ envName, logicalId, policy });
          expect({ envName, logicalId, policy: resource.UpdateReplacePolicy }).toEqual({ envName, logicalId, policy });
        }
      }
    }
  }
});
