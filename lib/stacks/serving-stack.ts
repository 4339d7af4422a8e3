import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { PredictionLog } from '../experiments/prediction-log';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import { RealTimeInferenceApi } from '../serving/real-time-inference-api';
import type { FeaturesStack } from './features-stack';
import type { FoundationStack } from './foundation-stack';

export interface ServingStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  /** Feature Store, whose online store the API serves and enriches predictions from. */
  readonly features?: FeaturesStack;
}

/**
 * The environment's real-time inference API and its prediction log: one API in front of every model
 * family. The families' endpoints live in their own stacks and register with the API through a route
 * parameter each (see InferenceRoute), so this stack does not change when a family is added,
 * changed or removed.
 */
export class ServingStack extends Stack {
  public readonly inferenceApi: RealTimeInferenceApi;
  /** Every prediction served and its outcome, when `api.predictionLog` is on. */
  public readonly predictionLog?: PredictionLog;

  constructor(scope: Construct, id: string, props: ServingStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    const actions = { [AlarmSeverity.CRITICAL]: foundation.alarmTopic.alarmAction, [AlarmSeverity.WARNING]: foundation.alarmTopic.alarmAction };

    if (config.api.predictionLog) {
      this.predictionLog = new PredictionLog(this, 'PredictionLog', { encryptionKey: foundation.dataKey, removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY });
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
      predictionCache: config.api.predictionCache && {
        memorySizeMiB: config.api.predictionCache.memorySizeMiB,
        sharedReadTimeout: Duration.millis(config.api.predictionCache.sharedReadTimeoutMs),
      },
      circuitBreakers: config.api.circuitBreakers,
      precomputedPredictions: config.api.precomputedPredictions,
    });
    if (props.features) {
      this.inferenceApi.addFeatureLookup(props.features.featureGroups);
    }
  }
}
