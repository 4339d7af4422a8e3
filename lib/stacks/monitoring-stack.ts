import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
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
import type { ServingStack } from './serving-stack';

export interface MonitoringStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  readonly serving: ServingStack;
  /**
   * The retraining workflow of each model, by model name, that Model Monitor violations start.
   * @default - violations only notify
   */
  readonly retrainingWorkflows?: Record<string, sfn.IStateMachine>;
}

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

/**
 * Model monitoring and responsible AI: for every model with a `modelMonitor` section, SageMaker Model
 * Monitor on its endpoint, the baselining workflow, alarms, the violation-to-retraining trigger and
 * its model card. Retraining workflows come from the training pipelines (`retrainingWorkflows`).
 */
export class MonitoringStack extends Stack {
  public readonly models: MonitoredModel[] = [];

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, props);
    const { config, foundation, serving } = props;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    const actions = { [AlarmSeverity.CRITICAL]: foundation.alarmTopic.alarmAction, [AlarmSeverity.WARNING]: foundation.alarmTopic.alarmAction };

    const monitored = config.models.filter((model): model is ModelConfig & { modelMonitor: ModelMonitorConfig } => model.modelMonitor !== undefined);
    if (foundation.vpc && monitored.length > 0) this.addMetricsEndpoint(foundation.vpc, config.network.cidr);

    for (const model of monitored) {
      const settings = model.modelMonitor;
      const endpoint = serving.endpoints.find((candidate) => candidate.modelName === model.name);
      if (!endpoint) throw new Error(`${this.node.path}: models[${model.name}]: no endpoint in the serving stack`);
      const monitor = new ModelMonitor(this, `Monitor-${model.name}`, {
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
      const baselineWorkflow = new MonitoringBaselineWorkflow(this, `Baselines-${model.name}`, {
        monitor,
        encryptionKey: foundation.dataKey,
        failureAlarmAction: foundation.alarmTopic.alarmAction,
        logRetention,
        logRemovalPolicy: removalPolicy,
      });
      const trigger = new RetrainingTrigger(this, `Retraining-${model.name}`, {
        monitor,
        alarmTopic: foundation.alarmTopic.topic,
        encryptionKey: foundation.dataKey,
        retrainingWorkflow: props.retrainingWorkflows?.[model.name],
        // The training pipeline's required field; it trains on its default dataset, <family>/datasets/current/.
        retrainingInput: { modelFamily: model.name },
        cooldown: Duration.hours(settings.retrainingCooldownHours),
        removalPolicy,
        logRetention,
      });
      const alarms = new MonitoringAlarms(this, `Alarms-${model.name}`, {
        monitor,
        actions,
        trigger,
        featureDriftThresholds: settings.featureDriftThresholds,
        modelQualityMinimums: settings.modelQuality?.minimums,
      });
      const card = settings.modelCard;
      const modelCard = card
        ? new ModelCard(this, `ModelCard-${model.name}`, {
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
      this.models.push({ modelName: model.name, monitor, baselineWorkflow, trigger, alarms, modelCard });
    }
  }

  /** Model Monitor's containers publish CloudWatch metrics; in isolated subnets they need this endpoint. */
  private addMetricsEndpoint(vpc: ec2.IVpc, cidr: string): void {
    const securityGroup = new ec2.SecurityGroup(this, 'MetricsEndpointSecurityGroup', {
      vpc,
      description: 'HTTPS from inside the VPC to the CloudWatch metrics endpoint (Model Monitor jobs)',
      allowAllOutbound: false,
    });
    // The literal range from the config (not the VPC's token), so that compliance checks can read it.
    securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from the VPC');
    new ec2.InterfaceVpcEndpoint(this, 'MetricsEndpoint', {
      vpc,
      service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
      privateDnsEnabled: true,
      securityGroups: [securityGroup],
      open: false,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
  }
}
