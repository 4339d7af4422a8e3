import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import type { ModelConfig, PlatformConfig } from '../../config/schema';
import type { PredictionLog } from '../experiments/prediction-log';
import type { ModelEndpoint } from '../serving/model-endpoint';
import { AbTestAnalysis } from '../experiments/ab-test-analysis';
import { ChampionChallengerPromotion } from '../experiments/champion-challenger-promotion';
import { BanditStrategy, OnlineAllocation } from '../experiments/online-allocation';
import { ShadowComparison } from '../experiments/shadow-comparison';
import type { MlWorkflow } from '../core/ml-workflow';
import { SecureBucket } from '../core/secure-bucket';
import type { FoundationStack } from './foundation-stack';

export interface ExperimentsStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
}

/** A model's experiment workflows, by kind. */
export interface ModelExperiments {
  readonly modelName: string;
  readonly promotion?: ChampionChallengerPromotion;
  readonly shadowComparison?: ShadowComparison;
  readonly abTest?: AbTestAnalysis;
  readonly bandit?: OnlineAllocation;
}

/**
 * What the families' experiments share: the bucket of verdicts and reports. Each family's
 * promotion, shadow comparison and A/B workflows live in its own stack ({@link buildModelExperiments});
 * the bucket stays here, with the id of earlier releases, so that its reports never move.
 */
export class ExperimentsStack extends Stack {
  /** Verdicts and reports of the experiment workflows. */
  public readonly reportsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ExperimentsStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    this.reportsBucket = new SecureBucket(this, 'Reports', {
      encryptionKey: foundation.dataKey,
      serverAccessLogsBucket: foundation.accessLogsBucket,
      removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    }).bucket;
  }
}

export interface ModelExperimentsProps {
  readonly config: PlatformConfig;
  readonly model: ModelConfig;
  readonly foundation: FoundationStack;
  readonly endpoint: ModelEndpoint;
  /** The shared reports bucket; required when the model has a shadow comparison. */
  readonly reports?: ExperimentsStack;
  readonly predictionLog?: PredictionLog;
}

/** Whether a model has any experiment workflow. */
export function hasExperimentWorkflows(model: ModelConfig): boolean {
  const { promotion, shadowComparison, abTest, bandit } = model.experiments;
  return promotion !== undefined || shadowComparison !== undefined || abTest !== undefined || bandit !== undefined;
}

/** The experiment workflows of one model family, in `scope` (its stack), with the ids of the earlier one-stack layout. */
export function buildModelExperiments(scope: Construct, props: ModelExperimentsProps): ModelExperiments {
  const { config, model, foundation, endpoint, predictionLog } = props;
  const common = {
    notificationTopic: foundation.alarmTopic.topic,
    encryptionKey: foundation.dataKey,
    logRetention: config.logRetentionDays as logs.RetentionDays,
    logRemovalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    failureAlarmAction: foundation.alarmTopic.alarmAction,
  };
  const { promotion, shadowComparison, abTest, bandit } = model.experiments;
  if (shadowComparison && !props.reports) {
    throw new Error(`${scope.node.path}: models[${model.name}].experiments.shadowComparison: needs the shared reports bucket (ExperimentsStack)`);
  }
  return {
    modelName: model.name,
    promotion:
      promotion &&
      new ChampionChallengerPromotion(scope, `Promotion-${model.name}`, {
        ...common,
        endpoint,
        championVariant: promotion.championVariant,
        challengerVariant: promotion.challengerVariant,
        trafficSteps: promotion.trafficSteps,
        bakeTime: Duration.minutes(promotion.bakeMinutes),
        maxErrorRate: promotion.maxErrorRate,
        maxLatency: Duration.millis(promotion.maxLatencyMs),
        minInvocations: promotion.minInvocations,
        predictionLog,
      }),
    shadowComparison:
      shadowComparison &&
      new ShadowComparison(scope, `ShadowComparison-${model.name}`, {
        ...common,
        endpoint,
        observationTime: Duration.minutes(shadowComparison.observationMinutes),
        maxErrorRate: shadowComparison.maxErrorRate,
        maxLatency: Duration.millis(shadowComparison.maxLatencyMs),
        minInvocations: shadowComparison.minInvocations,
        verdictBucket: props.reports!.reportsBucket,
      }),
    abTest:
      abTest &&
      new AbTestAnalysis(scope, `AbTest-${model.name}`, {
        ...common,
        modelName: model.name,
        // The schema requires api.predictionLog whenever a model has an A/B test.
        predictionLog: predictionLog!,
        variantA: abTest.variantA,
        variantB: abTest.variantB,
        outcomeType: abTest.outcomeType,
        minimumDetectableEffect: abTest.minimumDetectableEffect,
        alpha: abTest.alpha,
        power: abTest.power,
        vpc: foundation.vpc,
      }),
    bandit:
      bandit &&
      new OnlineAllocation(scope, `Bandit-${model.name}`, {
        ...common,
        endpoint,
        // The schema requires api.predictionLog whenever a model has a bandit.
        predictionLog: predictionLog!,
        outcomeType: bandit.outcomeType,
        strategy: bandit.strategy as BanditStrategy,
        higherIsBetter: bandit.higherIsBetter,
        minShare: bandit.minShare,
        maxStep: bandit.maxStep,
        minObservations: bandit.minObservations,
        outcomeDelay: Duration.minutes(bandit.outcomeDelayMinutes),
        firstWindow: Duration.hours(bandit.firstWindowHours),
        schedule: scheduler.ScheduleExpression.rate(Duration.minutes(bandit.intervalMinutes)),
        bakeTime: Duration.minutes(bandit.bakeMinutes),
        vpc: foundation.vpc,
      }),
  };
}

/** Every workflow of a model's experiments. */
export function experimentWorkflows(experiments: ModelExperiments): MlWorkflow[] {
  return [experiments.promotion?.workflow, experiments.shadowComparison?.workflow, experiments.abTest?.workflow, experiments.bandit?.workflow].filter((w): w is MlWorkflow => w !== undefined);
}
