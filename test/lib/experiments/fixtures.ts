import { App, Duration, Stack } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../../lib/core/data-key';
import { AlarmSeverity } from '../../../lib/serving/endpoint-alarms';
import { ModelEndpoint, type ModelEndpointProps } from '../../../lib/serving/model-endpoint';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { OnlineAllocation, type OnlineAllocationProps } from '../../../lib/experiments/online-allocation';
import { PredictionLog } from '../../../lib/experiments/prediction-log';

export const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

/** A stack with a champion/challenger endpoint (with alarms), a key and a topic, for experiment constructs. */
export function experimentStack(endpointProps: Partial<ModelEndpointProps> = {}) {
  const app = new App();
  const stack = new Stack(app, 'Experiments', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [
      { name: 'champion', weight: 90, model: { version: '1.0.0', image: IMAGE }, capacity: instance },
      { name: 'challenger', weight: 10, model: { version: '1.1.0', image: IMAGE }, capacity: instance },
    ],
    alarms: { actions: { [AlarmSeverity.CRITICAL]: new actions.SnsAction(topic), [AlarmSeverity.WARNING]: new actions.SnsAction(topic) } },
    ...endpointProps,
  });
  return { app, stack, key, topic, endpoint, bake: Duration.minutes(1) };
}

/** A bandit over the fixture's champion and challenger, with its prediction log. */
export function onlineAllocation(overrides: Partial<OnlineAllocationProps> = {}, endpointProps: Parameters<typeof experimentStack>[0] = {}) {
  const world = experimentStack(endpointProps);
  const log = new PredictionLog(world.stack, 'Log', { encryptionKey: world.key });
  const allocation = new OnlineAllocation(world.stack, 'Bandit', {
    endpoint: world.endpoint,
    predictionLog: log,
    outcomeType: 'binary',
    encryptionKey: world.key,
    notificationTopic: world.topic,
    failureAlarmAction: new actions.SnsAction(world.topic),
    ...overrides,
  });
  return { ...world, log, allocation };
}

