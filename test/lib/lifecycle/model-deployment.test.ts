import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ModelDeployment } from '../../../lib/lifecycle/model-deployment';
import { ModelApprovalPolicy, ModelPackageGroup } from '../../../lib/lifecycle/model-package-group';
import { WeightsOnUpdate } from '../../../lib/serving/model-endpoint';
import { expectValidStateMachines } from '../../support/asl';
import { nagFindings } from '../../support/platform';
import { endpointIn, lifecycleStack } from './fixtures';

function deployment(endpointProps: Parameters<typeof endpointIn>[1] = {}) {
  const world = lifecycleStack();
  const endpoint = endpointIn(world, endpointProps);
  const construct = new ModelDeployment(world.stack, 'ChurnDeployment', { modelPackageGroup: world.group, endpoint, notificationTopic: world.topic, encryptionKey: world.key });
  const template = Template.fromStack(world.stack);
  const [machine] = expectValidStateMachines(template.toJSON());
  return { ...world, endpoint, construct, template, states: (machine.definition as any).States };
}

describe('ModelDeployment', () => {
  test('passes the three cdk-nag packs', () => {
    const { app, stack } = deployment({ dataCapture: { samplingPercentage: 20, retain: false } });
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });

  test('updates the endpoint with its deployment guardrails and keeps autoscaled instance counts', () => {
    const { states } = deployment({
      variants: [
        {
          name: 'champion',
          model: { version: '1.0.0', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1' },
          capacity: { kind: 'instance', instanceType: 'ml.c5.xlarge', initialInstanceCount: 2, autoscaling: { minCapacity: 2, maxCapacity: 4, targetInvocationsPerInstance: 500 } },
        },
      ],
      deploymentGuardrails: { trafficShifting: { mode: 'canary', canaryPercent: 10, wait: Duration.minutes(10) } },
    });
    const update = states['Update endpoint'].Parameters;
    expect(update.DeploymentConfig).toMatchObject({
      BlueGreenUpdatePolicy: { TrafficRoutingConfiguration: { Type: 'CANARY', CanarySize: { Type: 'CAPACITY_PERCENT', Value: 10 }, WaitIntervalInSeconds: 600 }, TerminationWaitInSeconds: 600 },
      AutoRollbackConfiguration: { Alarms: expect.arrayContaining([{ AlarmName: expect.stringContaining('champion') }]) },
    });
    expect(update.RetainAllVariantProperties).toBe(true);
    // Autoscaling owns the instance counts and the run-time weights stay: nothing is taken from the new configuration.
    expect(update.ExcludeRetainedVariantProperties).toBeUndefined();
    // Restoring the previous configuration is not held up by a canary.
    expect(states['Restore previous configuration'].Parameters.DeploymentConfig).toBeUndefined();
  });

  test('a new model version keeps the run-time weights, as the endpoint\'s own updates do, unless the endpoint applies its props', () => {
    const kept = deployment().states['Update endpoint'].Parameters;
    expect(kept.RetainAllVariantProperties).toBe(true);
    expect(kept.ExcludeRetainedVariantProperties).toEqual([{ VariantPropertyType: 'DesiredInstanceCount' }]);
    const reset = deployment({ weightsOnUpdate: WeightsOnUpdate.APPLY_PROPS }).states['Update endpoint'].Parameters;
    expect(reset).not.toHaveProperty('RetainAllVariantProperties');
    expect(reset).not.toHaveProperty('ExcludeRetainedVariantProperties');
  });

  test('creates models in the endpoint\'s VPC with its network isolation, and copies only what the endpoint has', () => {
    const plain = deployment();
    expect(plain.states['Create model'].Parameters.EnableNetworkIsolation).toBe(true);
    expect(plain.states['Create endpoint configuration'].Parameters).not.toHaveProperty('DataCaptureConfig.$');
    const captured = deployment({ dataCapture: { samplingPercentage: 20, retain: false } });
    expect(captured.states['Create endpoint configuration'].Parameters['DataCaptureConfig.$']).toBe('$.current.DataCaptureConfig');
    expect(captured.states['Create endpoint configuration'].Parameters['KmsKeyId.$']).toBe('$.current.KmsKeyId');
  });

  test('starts on approval of a version of its group', () => {
    const { template, group } = deployment();
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.sagemaker'], 'detail-type': ['SageMaker Model Package State Change'], detail: { ModelPackageGroupName: [group.modelPackageGroupName], ModelApprovalStatus: ['Approved'] } },
    });
  });

  test('refuses a target variant the endpoint does not have', () => {
    const world = lifecycleStack(ModelApprovalPolicy.AUTOMATIC);
    const endpoint = endpointIn(world);
    expect(() => new ModelDeployment(world.stack, 'Bad', { modelPackageGroup: world.group, endpoint, notificationTopic: world.topic, encryptionKey: world.key, targetVariant: 'candidate' })).toThrow(
      "Lifecycle/Bad (ModelDeployment): targetVariant: 'candidate' is not a production variant of the endpoint (champion, challenger)",
    );
  });
});

describe('ModelPackageGroup', () => {
  test('is retained by default, and refuses a bad family or name', () => {
    const world = lifecycleStack();
    const group = new ModelPackageGroup(world.stack, 'Fraud', { modelFamily: 'fraud' });
    expect(group.approvalPolicy).toBe(ModelApprovalPolicy.MANUAL);
    Template.fromStack(world.stack).hasResource('AWS::SageMaker::ModelPackageGroup', { DeletionPolicy: 'Retain', Properties: { ModelPackageGroupName: group.modelPackageGroupName } });
    expect(group.modelPackageGroupName).toMatch(/^[a-zA-Z0-9-]{1,63}$/);
    expect(() => new ModelPackageGroup(world.stack, 'Bad', { modelFamily: 'Fraud Model' })).toThrow(/Lifecycle\/Bad \(ModelPackageGroup\): invalid props:\n  - modelFamily: must be 2-32 lowercase/);
    expect(() => new ModelPackageGroup(world.stack, 'BadName', { modelFamily: 'fraud', modelPackageGroupName: 'fraud_versions' })).toThrow(/modelPackageGroupName: must be 1-63 letters/);
  });
});
