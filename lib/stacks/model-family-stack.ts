import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ModelConfig, PlatformConfig } from '../../config/schema';
import type { LifecycleConfig } from '../../config/lifecycle-schema';
import type { ModelMonitorConfig } from '../../config/model-monitor';
import { DriftDetector } from '../monitoring/drift-detector';
import { PlatformDashboard } from '../monitoring/platform-dashboard';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import type { InferenceRoute } from '../serving/inference-route';
import { ModelData } from '../serving/model-data';
import { ModelEndpoint, type ModelVersionProps } from '../serving/model-endpoint';
import { buildModelExperiments, hasExperimentWorkflows, type ExperimentsStack, type ModelExperiments } from './experiments-stack';
import type { FoundationStack } from './foundation-stack';
import { buildModelLifecycle, type LifecycleStack, type ModelLifecycle } from './lifecycle-stack';
import { buildModelMonitoring, type MonitoredModel } from './monitoring-stack';
import type { ServingStack } from './serving-stack';

export interface ModelFamilyStackProps extends StackProps {
  readonly config: PlatformConfig;
  /** The family, as validated in `config.models`. */
  readonly model: ModelConfig;
  readonly foundation: FoundationStack;
  /** The inference API the family's endpoint is served by, and the prediction log its experiments read. */
  readonly serving: ServingStack;
  /** The shared training-data and run-artifacts buckets; required when the family has a lifecycle. */
  readonly lifecycleBuckets?: LifecycleStack;
  /** The shared reports bucket; required when the family has a shadow comparison. */
  readonly experimentReports?: ExperimentsStack;
}

/** CloudWatch composite alarms name at most this many alarms in their rule. */
const MAX_ALARMS_IN_RULE = 100;

/**
 * Everything that belongs to one model family: its endpoint (and route in the inference API),
 * alarms, drift detection, lifecycle, Model Monitor and experiments, its dashboard, and one
 * composite "health" alarm that is in ALARM when any of the family's alarms is. A family deploys,
 * changes and goes away with this stack alone: `cdk deploy MlPlatform-<env>-<family>`.
 *
 * Construct ids inside are those the family's resources had in the earlier layer-per-stack layout,
 * so their logical ids are unchanged (which `cdk import` of retained resources relies on).
 */
export class ModelFamilyStack extends Stack {
  public readonly modelName: string;
  public readonly endpoint: ModelEndpoint;
  /** The family's route in the inference API. */
  public readonly route: InferenceRoute;
  public readonly driftDetector?: DriftDetector;
  public readonly lifecycle?: ModelLifecycle;
  public readonly monitoring?: MonitoredModel;
  public readonly experiments: ModelExperiments;
  public readonly dashboard: PlatformDashboard;
  /** In ALARM while any alarm of the family is; what the environment overview lists. */
  public readonly healthAlarm: cloudwatch.CompositeAlarm;

  constructor(scope: Construct, id: string, props: ModelFamilyStackProps) {
    super(scope, id, props);
    const { config, model, foundation, serving } = props;
    this.modelName = model.name;
    this.endpoint = familyEndpoint(this, config, model, foundation);
    const precomputed = model.lifecycle?.batchInference?.precomputed;
    this.route = serving.inferenceApi.addEndpoint(this.endpoint, {
      stickyRouting: model.experiments.stickyRouting,
      cacheTtl: model.cache === undefined ? undefined : Duration.seconds(model.cache.ttlSeconds),
      circuitBreaker: model.circuitBreaker && {
        failureRateThreshold: model.circuitBreaker.failureRateThreshold,
        minimumCalls: model.circuitBreaker.minimumCalls,
        window: Duration.seconds(model.circuitBreaker.windowSeconds),
        coolDown: Duration.seconds(model.circuitBreaker.coolDownSeconds),
        probes: model.circuitBreaker.probes,
      },
      fallback: model.fallback && { variant: model.fallback.variant, staticAnswer: model.fallback.staticAnswer },
      precomputedMaxAge: precomputed === undefined ? undefined : Duration.hours(precomputed.maxAgeHours),
    });

    if (model.driftDetection) {
      this.driftDetector = new DriftDetector(this, `Drift-${model.name}`, {
        endpoint: this.endpoint,
        baseline: { bucket: foundation.artifactsBucket, key: `baselines/${model.name}/drift-baseline.json` },
        encryptionKey: foundation.dataKey,
        interval: Duration.minutes(model.driftDetection.intervalMinutes),
        psiThreshold: model.driftDetection.psiThreshold,
        alarmAction: foundation.alarmTopic.alarmAction,
        vpc: foundation.vpc,
        logRetention: config.logRetentionDays as logs.RetentionDays,
        removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      });
    }

    if (model.lifecycle) {
      if (!props.lifecycleBuckets) throw new Error(`${this.node.path}: models[${model.name}].lifecycle: needs the shared lifecycle buckets (lifecycleBuckets)`);
      this.lifecycle = buildModelLifecycle(this, {
        config,
        model: model as ModelConfig & { lifecycle: LifecycleConfig },
        foundation,
        buckets: props.lifecycleBuckets,
        endpoint: this.endpoint,
        stateTable: serving.inferenceApi.stateTable?.table,
      });
    }
    if (model.modelMonitor) {
      this.monitoring = buildModelMonitoring(this, {
        config,
        model: model as ModelConfig & { modelMonitor: ModelMonitorConfig },
        foundation,
        endpoint: this.endpoint,
        // Model Monitor violations start the family's training pipeline.
        retrainingWorkflow: this.lifecycle?.training.workflow.stateMachine,
      });
    }
    this.experiments = hasExperimentWorkflows(model)
      ? buildModelExperiments(this, { config, model, foundation, endpoint: this.endpoint, reports: props.experimentReports, predictionLog: serving.predictionLog })
      : { modelName: model.name };

    this.dashboard = new PlatformDashboard(this, 'Dashboard');
    this.dashboard.addEndpoint(this.endpoint);
    this.dashboard.addInferenceApi(serving.inferenceApi, [model.name]);
    if (this.driftDetector) this.dashboard.addDrift(this.driftDetector);
    if (this.lifecycle?.training.dataValidation) this.dashboard.addDataValidation(this.lifecycle.training.dataValidation);
    if (this.lifecycle?.federated) this.dashboard.addFederated(this.lifecycle.federated);
    if (this.lifecycle?.incremental) this.dashboard.addIncrementalTraining(this.lifecycle.incremental, 'Incremental training', this.lifecycle.deployment);
    if (this.monitoring) this.dashboard.addModelMonitor(this.monitoring.monitor, { trigger: this.monitoring.trigger, alarms: this.monitoring.alarms });
    this.dashboard.addExperiments(this.experiments);
    if (this.experiments.bandit) this.dashboard.addOnlineAllocation(this.experiments.bandit);

    this.healthAlarm = this.createHealthAlarm();
  }

  private createHealthAlarm(): cloudwatch.CompositeAlarm {
    const alarms = this.node.findAll().filter((construct): construct is cloudwatch.Alarm => construct instanceof cloudwatch.Alarm);
    if (alarms.length === 0) throw new Error(`${this.node.path}: the family has no alarms to watch`);
    if (alarms.length > MAX_ALARMS_IN_RULE) {
      throw new Error(`${this.node.path}: the family has ${alarms.length} alarms; its health alarm can name at most ${MAX_ALARMS_IN_RULE}`);
    }
    // No actions: every alarm it watches notifies on its own; this one is what the overview lists.
    return new cloudwatch.CompositeAlarm(this, 'Health', {
      alarmRule: cloudwatch.AlarmRule.anyOf(...alarms.map((alarm) => cloudwatch.AlarmRule.fromAlarm(alarm, cloudwatch.AlarmState.ALARM))),
      alarmDescription: `Model family ${this.modelName}: in ALARM while any of its ${alarms.length} alarms is (endpoint, drift, Model Monitor, workflows).`,
      actionsEnabled: false,
    });
  }
}

/** The family's endpoint from its config, with the construct id of earlier releases (`Model-<name>`). */
function familyEndpoint(scope: Construct, config: PlatformConfig, model: ModelConfig, foundation: FoundationStack): ModelEndpoint {
  const actions = { [AlarmSeverity.CRITICAL]: foundation.alarmTopic.alarmAction, [AlarmSeverity.WARNING]: foundation.alarmTopic.alarmAction };
  const modelVersion = (version: ModelConfig['variants'][number]['model']): ModelVersionProps => ({
    version: version.version,
    image: version.image,
    environment: version.environment,
    modelData:
      version.modelData === undefined
        ? undefined
        : 'key' in version.modelData
          ? ModelData.fromBucket(foundation.artifactsBucket, version.modelData.key)
          : ModelData.fromS3Uri(version.modelData.s3Uri),
  });
  const guardrails = model.deploymentGuardrails;
  return new ModelEndpoint(scope, `Model-${model.name}`, {
    modelName: model.name,
    encryptionKey: foundation.dataKey,
    variants: model.variants.map((variant) => ({ ...variant, model: modelVersion(variant.model) })),
    shadowVariants: model.shadowVariants.map((variant) => ({ ...variant, model: modelVersion(variant.model) })),
    networkIsolation: model.networkIsolation,
    vpc: foundation.vpc,
    logRemovalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    dataCapture: model.dataCapture && {
      accessLogsBucket: foundation.accessLogsBucket,
      removalPolicy: config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
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
    deploymentGuardrails: guardrails && {
      trafficShifting:
        guardrails.mode === 'all-at-once'
          ? { mode: 'all-at-once' }
          : guardrails.mode === 'canary'
            ? { mode: 'canary', canaryPercent: guardrails.percent!, wait: Duration.minutes(guardrails.waitMinutes) }
            : { mode: 'linear', stepPercent: guardrails.percent!, wait: Duration.minutes(guardrails.waitMinutes) },
      terminationWait: Duration.minutes(guardrails.terminationWaitMinutes),
    },
  });
}
