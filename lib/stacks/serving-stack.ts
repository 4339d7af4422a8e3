import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ModelConfig, PlatformConfig } from '../../config/schema';
import { PredictionLog } from '../experiments/prediction-log';
import { DriftDetector } from '../monitoring/drift-detector';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import { ModelData } from '../serving/model-data';
import { ModelEndpoint, type ModelVersionProps } from '../serving/model-endpoint';
import { RealTimeInferenceApi } from '../serving/real-time-inference-api';
import type { FeaturesStack } from './features-stack';
import type { FoundationStack } from './foundation-stack';

export interface ServingStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  /** Feature Store, whose online store the API serves and enriches predictions from. */
  readonly features?: FeaturesStack;
}

/** Model serving and real-time inference: one endpoint per model family, one API in front of them all. */
export class ServingStack extends Stack {
  public readonly endpoints: ModelEndpoint[];
  public readonly inferenceApi: RealTimeInferenceApi;
  /** Every prediction served and its outcome, when `api.predictionLog` is on. */
  public readonly predictionLog?: PredictionLog;
  /** Near-real-time drift detectors, by model, where configured. */
  public readonly driftDetectors: DriftDetector[] = [];

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
          alarms: model.alarms
            ? {
                actions,
                error5xxRatePercent: model.alarms.error5xxRatePercent,
                error4xxRatePercent: model.alarms.error4xxRatePercent,
                modelLatencyP99Ms: model.alarms.modelLatencyP99Ms,
                anomalyDetection: model.alarms.anomalyDetection ? {} : undefined,
                pageOncePerIncident: model.alarms.pageOncePerIncident,
              }
            : { actions },
          deploymentGuardrails: model.deploymentGuardrails && {
            trafficShifting:
              model.deploymentGuardrails.mode === 'all-at-once'
                ? { mode: 'all-at-once' }
                : model.deploymentGuardrails.mode === 'canary'
                  ? { mode: 'canary', canaryPercent: model.deploymentGuardrails.percent!, wait: Duration.minutes(model.deploymentGuardrails.waitMinutes) }
                  : { mode: 'linear', stepPercent: model.deploymentGuardrails.percent!, wait: Duration.minutes(model.deploymentGuardrails.waitMinutes) },
            terminationWait: Duration.minutes(model.deploymentGuardrails.terminationWaitMinutes),
          },
        }),
    );

    config.models.forEach((model, index) => {
      if (!model.driftDetection) return;
      this.driftDetectors.push(
        new DriftDetector(this, `Drift-${model.name}`, {
          endpoint: this.endpoints[index],
          baseline: { bucket: foundation.artifactsBucket, key: `baselines/${model.name}/drift-baseline.json` },
          encryptionKey: foundation.dataKey,
          interval: Duration.minutes(model.driftDetection.intervalMinutes),
          psiThreshold: model.driftDetection.psiThreshold,
          alarmAction: foundation.alarmTopic.alarmAction,
          vpc: foundation.vpc,
          logRetention: config.logRetentionDays as logs.RetentionDays,
          removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        }),
      );
    });

    if (config.api.predictionLog) {
      this.predictionLog = new PredictionLog(this, 'PredictionLog', { encryptionKey: foundation.dataKey, retain: config.retainData });
    }

    this.inferenceApi = new RealTimeInferenceApi(this, 'InferenceApi', {
      predictionLog: this.predictionLog,
      predictionLogRetentionDays: config.api.predictionLogRetentionDays,
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
    config.models.forEach((model, index) => this.inferenceApi.addEndpoint(this.endpoints[index], { stickyRouting: model.experiments.stickyRouting }));
    if (props.features) {
      this.inferenceApi.addFeatureLookup(props.features.featureGroups);
    }
  }
}
