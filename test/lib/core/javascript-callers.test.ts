// What a caller without the type checker (plain JavaScript, or `as any`) gets for props it left out or
// got the type of wrong: an error naming each prop and the construct, never a crash from inside a construct
// (`Cannot read properties of undefined`) or CloudFormation's words (`Tag 'ml:model-family' must have a value`).
import { App, Stack } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ChampionChallengerPromotion, DataKey, FeatureGroup, ModelEndpoint, ModelPackageGroup, RealTimeInferenceApi, TrainingPipeline } from '../../../lib';

const stack = () => new Stack(new App(), 'Js', { env: { account: '123456789012', region: 'us-east-1' } });
// Props as a JavaScript caller may pass them.
const loose = (props: Record<string, unknown>): never => props as never;

describe('constructs called from JavaScript', () => {
  test('ModelPackageGroup names a missing family and an approval policy that is not one', () => {
    expect(() => new ModelPackageGroup(stack(), 'Group', loose({}))).toThrow('Js/Group (ModelPackageGroup): invalid props:\n  - modelFamily: is required');
    expect(() => new ModelPackageGroup(stack(), 'Group', loose({ modelFamily: 'churn', approvalPolicy: 'yes' }))).toThrow(
      "Js/Group (ModelPackageGroup): invalid props:\n  - approvalPolicy: must be one of 'PendingManualApproval', 'Approved'; got the string \"yes\"",
    );
    expect(() => new ModelPackageGroup(stack(), 'Group', undefined as never)).toThrow('Js/Group (ModelPackageGroup): invalid props:\n  - props: is required');
  });

  test('TrainingPipeline lists every missing prop at once', () => {
    expect(() => new TrainingPipeline(stack(), 'Pipeline', loose({ training: { image: 'x' } }))).toThrow(
      [
        'Js/Pipeline (TrainingPipeline): invalid props:',
        '  - modelPackageGroup: is required',
        '  - dataBucket: is required',
        '  - artifactsBucket: is required',
        '  - notificationTopic: is required',
        '  - encryptionKey: is required',
        '  - gate: is required',
        '  - preprocessing: is required',
        '  - training.instanceType: is required',
        '  - evaluation: is required',
      ].join('\n'),
    );
  });

  test('FeatureGroup names its missing definition, bucket and key', () => {
    expect(() => new FeatureGroup(stack(), 'Customers', loose({ definition: 'customers' }))).toThrow(
      'Js/Customers (FeatureGroup): invalid props:\n  - definition: must be an object; got the string "customers"\n  - offlineStoreBucket: is required\n  - encryptionKey: is required',
    );
  });

  test('ChampionChallengerPromotion names a missing endpoint and topic', () => {
    const scope = stack();
    const key = new DataKey(scope, 'Key').key;
    expect(() => new ChampionChallengerPromotion(scope, 'Promotion', loose({ encryptionKey: key, trafficSteps: 50 }))).toThrow(
      'Js/Promotion (ChampionChallengerPromotion): invalid props:\n  - endpoint: is required\n  - notificationTopic: is required\n  - trafficSteps: must be an array; got number 50',
    );
  });

  test('ModelEndpoint names a traffic-shifting mode that is none of its three, rather than taking it for linear', () => {
    const variants = [{ name: 'a', model: { version: '1', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1' }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }];
    expect(() => new ModelEndpoint(stack(), 'Endpoint', loose({ modelName: 'churn', variants, deploymentGuardrails: { trafficShifting: { mode: 'gradual', stepPercent: 10 } } }))).toThrow(
      "Js/Endpoint (ModelEndpoint): invalid props:\n  - deploymentGuardrails.trafficShifting.mode: must be one of 'all-at-once', 'canary', 'linear'; got the string \"gradual\"",
    );
    expect(() => new ModelEndpoint(stack(), 'Endpoint', loose({ modelName: 'churn', variants, deploymentGuardrails: { trafficShifting: { mode: 'canary', canaryPercent: 10 } } }))).toThrow(
      'Js/Endpoint (ModelEndpoint): invalid props:\n  - deploymentGuardrails.trafficShifting.wait: is required',
    );
  });

  test('RealTimeInferenceApi names an endpoints prop that is not a list of endpoints', () => {
    expect(() => new RealTimeInferenceApi(stack(), 'Api', loose({ endpoints: 'churn' }))).toThrow('Js/Api (RealTimeInferenceApi): invalid props:\n  - endpoints: must be an array; got the string "churn"');
    expect(() => new RealTimeInferenceApi(stack(), 'Api', loose({ endpoints: [{ modelEndpoint: 'churn' }] }))).toThrow(
      'Js/Api (RealTimeInferenceApi): invalid props:\n  - endpoints[0].modelEndpoint: must be a construct; got the string "churn"',
    );
    const scope = stack();
    const bucket = new s3.Bucket(scope, 'NotAnEndpoint');
    expect(() => new RealTimeInferenceApi(scope, 'Api', loose({ endpoints: [bucket] }))).toThrow('Js/Api (RealTimeInferenceApi): invalid props:\n  - endpoints[0]: must be a ModelEndpoint; got Js/NotAnEndpoint');
  });
});
