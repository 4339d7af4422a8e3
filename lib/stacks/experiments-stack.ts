import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { AbTestAnalysis } from '../experiments/ab-test-analysis';
import { ChampionChallengerPromotion } from '../experiments/champion-challenger-promotion';
import { ShadowComparison } from '../experiments/shadow-comparison';
import type { MlWorkflow } from '../core/ml-workflow';
import { SecureBucket } from '../core/secure-bucket';
import type { FoundationStack } from './foundation-stack';
import type { ServingStack } from './serving-stack';

export interface ExperimentsStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  readonly serving: ServingStack;
}

/** A model's experiment workflows, by kind. */
export interface ModelExperiments {
  readonly modelName: string;
  readonly promotion?: ChampionChallengerPromotion;
  readonly shadowComparison?: ShadowComparison;
  readonly abTest?: AbTestAnalysis;
}

/** The experiment workflows of each model: champion-challenger promotion, shadow comparison, A/B analysis. */
export class ExperimentsStack extends Stack {
  public readonly experiments: ModelExperiments[];
  /** Verdicts and reports of the experiment workflows. */
  public readonly reportsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: ExperimentsStackProps) {
    super(scope, id, props);
    const { config, foundation, serving } = props;
    this.reportsBucket = new SecureBucket(this, 'Reports', {
      encryptionKey: foundation.dataKey,
      serverAccessLogsBucket: foundation.accessLogsBucket,
      retain: config.retainData,
    }).bucket;
    const common = {
      notificationTopic: foundation.alarmTopic.topic,
      encryptionKey: foundation.dataKey,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      logRemovalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      failureAlarmAction: foundation.alarmTopic.alarmAction,
    };
    this.experiments = config.models.map((model, index) => {
      const endpoint = serving.endpoints[index];
      const { promotion, shadowComparison, abTest } = model.experiments;
      return {
        modelName: model.name,
        promotion:
          promotion &&
          new ChampionChallengerPromotion(this, `Promotion-${model.name}`, {
            ...common,
            endpoint,
            championVariant: promotion.championVariant,
            challengerVariant: promotion.challengerVariant,
            trafficSteps: promotion.trafficSteps,
            bakeTime: Duration.minutes(promotion.bakeMinutes),
            maxErrorRate: promotion.maxErrorRate,
            maxLatency: Duration.millis(promotion.maxLatencyMs),
            minInvocations: promotion.minInvocations,
            predictionLog: serving.predictionLog,
          }),
        shadowComparison:
          shadowComparison &&
          new ShadowComparison(this, `ShadowComparison-${model.name}`, {
            ...common,
            endpoint,
            observationTime: Duration.minutes(shadowComparison.observationMinutes),
            maxErrorRate: shadowComparison.maxErrorRate,
            maxLatency: Duration.millis(shadowComparison.maxLatencyMs),
            minInvocations: shadowComparison.minInvocations,
            verdictBucket: this.reportsBucket,
          }),
        abTest:
          abTest &&
          new AbTestAnalysis(this, `AbTest-${model.name}`, {
            ...common,
            modelName: model.name,
            // The schema requires api.predictionLog whenever a model has an A/B test.
            predictionLog: serving.predictionLog!,
            variantA: abTest.variantA,
            variantB: abTest.variantB,
            outcomeType: abTest.outcomeType,
            minimumDetectableEffect: abTest.minimumDetectableEffect,
            alpha: abTest.alpha,
            power: abTest.power,
            vpc: foundation.vpc,
          }),
      };
    });
  }

  /** Every workflow of the stack, for the dashboard. */
  public get workflows(): MlWorkflow[] {
    return this.experiments.flatMap((entry) => [entry.promotion?.workflow, entry.shadowComparison?.workflow, entry.abTest?.workflow].filter((w): w is MlWorkflow => w !== undefined));
  }
}
