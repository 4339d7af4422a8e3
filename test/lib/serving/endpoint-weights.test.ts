// Traffic weights changed at run time (a promotion, a rollback) against the next deploy: ModelEndpoint's
// templates before and after a change, read the way CloudFormation reads them. The endpoint updates with
// RetainAllVariantProperties, so its run-time weights survive an update; the Custom::EndpointWeights
// resource carries the declared weights, and CloudFormation sends it an Update (which applies them)
// only when its properties change.
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import { DataKey, ModelEndpoint, WeightsOnUpdate, type ModelEndpointProps, type ProductionVariantProps } from '../../../lib';
import { nagFindings } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

const variants = (championWeight: number, challengerVersion = '7.1.0'): ProductionVariantProps[] => [
  { name: 'champion', weight: championWeight, model: { version: '7.0.0', image: IMAGE }, capacity: instance },
  { name: 'challenger', weight: 100 - championWeight, model: { version: challengerVersion, image: IMAGE }, capacity: instance },
];

function synth(props: Partial<ModelEndpointProps>, more?: (stack: Stack, key: kms.IKey) => void) {
  const app = new App();
  const stack = new Stack(app, 'Fraud', { env: { account: '111111111111', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  new ModelEndpoint(stack, 'Fraud', { modelName: 'fraud', encryptionKey: key, variants: variants(95), ...props });
  more?.(stack, key);
  return { app, stack, template: Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties?: any; DeletionPolicy?: string }> } };
}

const ofType = (template: ReturnType<typeof synth>['template'], type: string) => Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
const one = (template: ReturnType<typeof synth>['template'], type: string) => {
  const found = ofType(template, type);
  expect(found).toHaveLength(1);
  return found[0][1];
};

describe('ModelEndpoint weights on update (WeightsOnUpdate.KEEP_DEPLOYED, the default)', () => {
  test('the endpoint keeps its variants\' run-time weights through updates and takes instance counts from the configuration', () => {
    const { template } = synth({});
    const endpoint = one(template, 'AWS::SageMaker::Endpoint');
    expect(endpoint.Properties.RetainAllVariantProperties).toBe(true);
    expect(endpoint.Properties.ExcludeRetainedVariantProperties).toEqual([{ VariantPropertyType: 'DesiredInstanceCount' }]);
    const weights = one(template, 'Custom::EndpointWeights');
    expect(weights.Properties.Weights).toEqual([
      { VariantName: 'champion', DesiredWeight: 95 },
      { VariantName: 'challenger', DesiredWeight: 5 },
    ]);
    expect(weights.Properties.EndpointName).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Fraud/), 'EndpointName'] });
  });

  test('before/after: a new model version changes the endpoint configuration but not the declared weights, so the run-time split stays', () => {
    const before = synth({}).template;
    const after = synth({ variants: variants(95, '7.2.0') }).template;
    expect(one(after, 'AWS::SageMaker::EndpointConfig').Properties).not.toEqual(one(before, 'AWS::SageMaker::EndpointConfig').Properties);
    // Same properties: CloudFormation sends the custom resource no Update, and nothing resets the weights.
    expect(one(after, 'Custom::EndpointWeights').Properties).toEqual(one(before, 'Custom::EndpointWeights').Properties);
    expect(one(after, 'AWS::SageMaker::Endpoint').Properties.RetainAllVariantProperties).toBe(true);
  });

  test('before/after: a changed weight in the props changes the declared weights, so CloudFormation has them applied', () => {
    const before = synth({}).template;
    const after = synth({ variants: variants(50) }).template;
    expect(one(after, 'Custom::EndpointWeights').Properties).not.toEqual(one(before, 'Custom::EndpointWeights').Properties);
    expect(one(after, 'Custom::EndpointWeights').Properties.Weights).toEqual([
      { VariantName: 'champion', DesiredWeight: 50 },
      { VariantName: 'challenger', DesiredWeight: 50 },
    ]);
  });

  test('the stack has one weights function for all its endpoints, allowed to describe and set their weights only', () => {
    const { template } = synth({}, (stack, key) => {
      new ModelEndpoint(stack, 'Second', { modelName: 'second', encryptionKey: key, variants: [{ name: 'only', model: { version: '1', image: IMAGE }, capacity: instance }] });
    });
    expect(ofType(template, 'Custom::EndpointWeights')).toHaveLength(2);
    const functions = ofType(template, 'AWS::Lambda::Function');
    expect(functions).toHaveLength(1);
    const [, fn] = functions[0];
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Timeout: 900, ReservedConcurrentExecutions: 2 });
    // CloudFormation gets an answer to every event: no retry would run the same change twice.
    expect(one(template, 'AWS::Lambda::EventInvokeConfig').Properties).toMatchObject({ MaximumRetryAttempts: 0 });
    const endpoints = ofType(template, 'AWS::SageMaker::Endpoint').map(([logicalId]) => ({ Ref: logicalId }));
    const statements = ofType(template, 'AWS::IAM::ManagedPolicy').flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Array<{ Action: unknown; Resource: unknown }>);
    const sagemaker = statements.filter((statement) => JSON.stringify(statement.Action).includes('sagemaker:UpdateEndpointWeightsAndCapacities'));
    expect(sagemaker).toEqual([{ Effect: 'Allow', Action: ['sagemaker:DescribeEndpoint', 'sagemaker:UpdateEndpointWeightsAndCapacities'], Resource: expect.arrayContaining(endpoints) }]);
    expect(sagemaker[0].Resource).toHaveLength(2);
  });

  test('logRemovalPolicy sets the weights function\'s log group; it is retained by default', () => {
    const logGroup = (template: ReturnType<typeof synth>['template']) => one(template, 'AWS::Logs::LogGroup');
    expect(logGroup(synth({}).template).DeletionPolicy).toBe('Retain');
    expect(logGroup(synth({ logRemovalPolicy: RemovalPolicy.DESTROY }).template).DeletionPolicy).toBe('Delete');
  });

  test('passes the three cdk-nag packs', () => {
    const { app, stack } = synth({});
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });
});

describe('ModelEndpoint weights on update (WeightsOnUpdate.APPLY_PROPS)', () => {
  test('every update of the configuration puts the props\' weights back: no retention, no custom resource', () => {
    const { template } = synth({ weightsOnUpdate: WeightsOnUpdate.APPLY_PROPS });
    const endpoint = one(template, 'AWS::SageMaker::Endpoint');
    expect(endpoint.Properties).not.toHaveProperty('RetainAllVariantProperties');
    expect(endpoint.Properties).not.toHaveProperty('ExcludeRetainedVariantProperties');
    expect(ofType(template, 'Custom::EndpointWeights')).toEqual([]);
    expect(ofType(template, 'AWS::Lambda::Function')).toEqual([]);
  });

  test('with autoscaling, the instance counts are kept and the weights taken from the new configuration', () => {
    const autoscaled = { ...instance, autoscaling: { minCapacity: 1, maxCapacity: 4, targetInvocationsPerInstance: 500 } };
    const { template } = synth({
      weightsOnUpdate: WeightsOnUpdate.APPLY_PROPS,
      variants: [{ name: 'champion', model: { version: '1', image: IMAGE }, capacity: autoscaled }],
    });
    const endpoint = one(template, 'AWS::SageMaker::Endpoint');
    expect(endpoint.Properties.RetainAllVariantProperties).toBe(true);
    expect(endpoint.Properties.ExcludeRetainedVariantProperties).toEqual([{ VariantPropertyType: 'DesiredWeight' }]);
  });

  test('a value that is not a WeightsOnUpdate (plain JavaScript) fails, naming the prop', () => {
    expect(() => synth({ weightsOnUpdate: 'sometimes' as unknown as WeightsOnUpdate })).toThrow(/weightsOnUpdate: must be one of 'keep-deployed', 'apply-props'; got the string "sometimes"/);
  });
});
