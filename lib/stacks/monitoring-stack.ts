import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { ModelConfig, PlatformConfig } from '../../config/schema';
import type { ModelMonitorConfig } from '../../config/model-monitor';
import { ModelCard } from '../monitoring/model-card';
import { ModelMonitor, MonitoringFrequency } from '../monitoring/model-monitor';
import { MonitoringAlarms } from '../monitoring/monitoring-alarms';
import { MonitoringBaselineWorkflow } from '../monitoring/monitoring-baseline-workflow';
import { RetrainingTrigger } from '../monitoring/retraining-trigger';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import type { FoundationStack } from './foundation-stack';
import type { ModelEndpoint } from '../serving/model-endpoint';

/** Everything that monitors one model. */
export interface MonitoredModel {
  readonly modelName: string;
  readonly monitor: ModelMonitor;
  readonly baselineWorkflow: MonitoringBaselineWorkflow;
  readonly trigger: RetrainingTrigger;
  readonly alarms: MonitoringAlarms;
  readonly modelCard?: ModelCard;
}

/** `hourly`, `daily` or `daily@HH` from the config, as a schedule. */
export function monitoringFrequency(schedule: string): MonitoringFrequency {
  if (schedule === 'hourly') return MonitoringFrequency.hourly();
  const hour = /^daily(?:@(\d\d))?$/.exec(schedule);
  if (!hour) throw new Error(`modelMonitor schedule: must be hourly, daily or daily@HH; got '${schedule}'`);
  return MonitoringFrequency.daily(Number(hour[1] ?? 0));
}

export interface ModelMonitoringProps {
  readonly config: PlatformConfig;
  readonly model: ModelConfig & { modelMonitor: ModelMonitorConfig };
  readonly foundation: FoundationStack;
  readonly endpoint: ModelEndpoint;
  /**
   * The family's training pipeline, which Model Monitor violations start.
   * @default - violations only notify
   */
  readonly retrainingWorkflow?: sfn.IStateMachine;
}

/**
 * Model monitoring and responsible AI for one model family, in `scope` (its stack): SageMaker Model
 * Monitor on its endpoint, the baselining workflow, alarms, the violation-to-retraining trigger and
 * its model card. Construct ids are those of the earlier one-stack layout. In a VPC the jobs need
 * the CloudWatch metrics endpoint of the foundation stack.
 */
export function buildModelMonitoring(scope: Construct, props: ModelMonitoringProps): MonitoredModel {
  const { config, model, foundation, endpoint } = props;
  const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
  const logRetention = config.logRetentionDays as logs.RetentionDays;
  const actions = { [AlarmSeverity.CRITICAL]: foundation.alarmTopic.alarmAction, [AlarmSeverity.WARNING]: foundation.alarmTopic.alarmAction };
  const settings = model.modelMonitor;
  const monitor = new ModelMonitor(scope, `Monitor-${model.name}`, {
    endpoint,
    bucket: foundation.artifactsBucket,
    encryptionKey: foundation.dataKey,
    headers: settings.headers,
    instanceType: settings.instanceType,
    dataQuality: settings.dataQuality && { schedule: monitoringFrequency(settings.dataQuality.schedule) },
    modelQuality: settings.modelQuality && { ...settings.modelQuality, schedule: monitoringFrequency(settings.modelQuality.schedule) },
    bias: settings.bias && { ...settings.bias, schedule: monitoringFrequency(settings.bias.schedule) },
    explainability: settings.explainability && { ...settings.explainability, schedule: monitoringFrequency(settings.explainability.schedule) },
  });
  const baselineWorkflow = new MonitoringBaselineWorkflow(scope, `Baselines-${model.name}`, {
    monitor,
    encryptionKey: foundation.dataKey,
    failureAlarmAction: foundation.alarmTopic.alarmAction,
    logRetention,
    logRemovalPolicy: removalPolicy,
  });
  const trigger = new RetrainingTrigger(scope, `Retraining-${model.name}`, {
    monitor,
    alarmTopic: foundation.alarmTopic.topic,
    encryptionKey: foundation.dataKey,
    retrainingWorkflow: props.retrainingWorkflow,
    // The training pipeline's required field; it trains on its default dataset, <family>/datasets/current/.
    retrainingInput: { modelFamily: model.name },
    cooldown: Duration.hours(settings.retrainingCooldownHours),
    removalPolicy,
    logRetention,
  });
  const alarms = new MonitoringAlarms(scope, `Alarms-${model.name}`, {
    monitor,
    actions,
    trigger,
    featureDriftThresholds: settings.featureDriftThresholds,
    modelQualityMinimums: settings.modelQuality?.minimums,
  });
  const card = settings.modelCard;
  const modelCard = card
    ? new ModelCard(scope, `ModelCard-${model.name}`, {
        endpoint,
        encryptionKey: foundation.dataKey,
        description: model.description,
        owner: card.owner,
        problemType: card.problemType,
        algorithmType: card.algorithmType,
        intendedUse: card.intendedUse,
        trainingDetails: card.trainingDetails,
        ethicalConsiderations: card.ethicalConsiderations,
        caveatsAndRecommendations: card.caveatsAndRecommendations,
      })
    : undefined;
  return { modelName: model.name, monitor, baselineWorkflow, trigger, alarms, modelCard };
}
