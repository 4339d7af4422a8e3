import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../../lib/core/data-key';
import { SecureBucket } from '../../../lib/core/secure-bucket';
import { ModelMonitor, type ModelMonitorProps } from '../../../lib/monitoring/model-monitor';
import { ModelEndpoint, type ModelEndpointProps } from '../../../lib/serving/model-endpoint';

export const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
export const HEADERS = ['tenure_months', 'monthly_charges', 'contract_type', 'age'];

export interface MonitorWorld {
  readonly app: App;
  readonly stack: Stack;
  readonly key: DataKey['key'];
  readonly endpoint: ModelEndpoint;
  readonly bucket: s3.Bucket;
  readonly topic: sns.Topic;
  readonly vpc?: ec2.Vpc;
}

/** A stack with a churn endpoint that captures data, a KMS key, a bucket and an alarm topic. */
export function monitorWorld(options: { capture?: boolean; vpc?: boolean; endpoint?: Partial<ModelEndpointProps> } = {}): MonitorWorld {
  const app = new App();
  const stack = new Stack(app, 'Monitoring', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const vpc = options.vpc
    ? new ec2.Vpc(stack, 'Vpc', { natGateways: 0, maxAzs: 2, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] })
    : undefined;
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [{ name: 'champion', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
    dataCapture: options.capture === false ? undefined : { samplingPercentage: 100 },
    vpc,
    ...options.endpoint,
  });
  const bucket = new SecureBucket(stack, 'Artifacts', { encryptionKey: key }).bucket;
  const topic = new sns.Topic(stack, 'Alarms', { masterKey: key, enforceSSL: true });
  return { app, stack, key, endpoint, bucket, topic, vpc };
}

/** Every monitor switched on, as the churn model would configure them. */
export function allMonitors(world: MonitorWorld, overrides: Partial<ModelMonitorProps> = {}): ModelMonitor {
  return new ModelMonitor(world.stack, 'Monitor', {
    endpoint: world.endpoint,
    bucket: world.bucket,
    headers: HEADERS,
    dataQuality: {},
    modelQuality: { problemType: 'BinaryClassification', probabilityAttribute: '0', probabilityThreshold: 0.5 },
    bias: { label: 'churned', labelValuesOrThreshold: [1], facets: [{ name: 'age', valuesOrThreshold: [40] }], probabilityAttribute: '0', probabilityThreshold: 0.5 },
    explainability: { shapBaseline: [12, 70, 'month-to-month', 45], probabilityAttribute: '0' },
    ...overrides,
  });
}
