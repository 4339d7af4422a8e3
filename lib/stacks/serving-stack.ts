import { RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ModelConfig, PlatformConfig } from '../../config/schema';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import { ModelData } from '../serving/model-data';
import { ModelEndpoint, type ModelVersionProps } from '../serving/model-endpoint';
import { RealTimeInferenceApi } from '../serving/real-time-inference-api';
import type { FoundationStack } from './foundation-stack';

export interface ServingStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
}

/** Model serving and real-time inference: one endpoint per model family, one API in front of them all. */
export class ServingStack extends Stack {
  public readonly endpoints: ModelEndpoint[];
  public readonly inferenceApi: RealTimeInferenceApi;

  constructor(scope: Construct, id: string, props: ServingStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    const actions = { [AlarmSeverity.CRITICAL]: foundation.alarmTopic.alarmAction, [AlarmSeverity.WARNING]: foundation.alarmTopic.alarmAction };

    const modelVersion = (model: ModelConfig['variants'][number]['model']): ModelVersionProps => ({
      version: model.version,
      image: model.image,
      environment: model.environment,
      modelData:
        model.modelData === undefined
          ? undefined
          : 'key' in model.modelData
            ? ModelData.fromBucket(foundation.artifactsBucket, model.modelData.key)
            : ModelData.fromS3Uri(model.modelData.s3Uri),
    });

    this.endpoints = config.models.map(
      (model) =>
        new ModelEndpoint(this, `Model-${model.name}`, {
          modelName: model.name,
          encryptionKey: foundation.dataKey,
          variants: model.variants.map((variant) => ({ ...variant, model: modelVersion(variant.model) })),
          shadowVariants: model.shadowVariants.map((variant) => ({ ...variant, model: modelVersion(variant.model) })),
          networkIsolation: model.networkIsolation,
          vpc: foundation.vpc,
          dataCapture: model.dataCapture && {
            accessLogsBucket: foundation.accessLogsBucket,
            retain: config.retainData,
            samplingPercentage: model.dataCapture.samplingPercentage,
            captureRequests: model.dataCapture.captureRequests,
            captureResponses: model.dataCapture.captureResponses,
          },
          alarms: { actions, ...model.alarms },
        }),
    );

    this.inferenceApi = new RealTimeInferenceApi(this, 'InferenceApi', {
      endpoints: this.endpoints,
      encryptionKey: foundation.dataKey,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      logRemovalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      throttlingRateLimit: config.api.throttlingRateLimit,
      throttlingBurstLimit: config.api.throttlingBurstLimit,
      reservedConcurrency: config.api.reservedConcurrency,
      vpc: foundation.vpc,
      waf: config.api.waf,
      alarmActions: actions,
    });
  }
}
