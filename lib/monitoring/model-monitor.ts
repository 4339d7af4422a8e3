import { createHash } from 'node:crypto';
import { MonitoringProblemType, ProcessingInstanceType } from '../core/private/aws-enums';
import { CfnResource, Duration, Names, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import type { ModelEndpoint } from '../serving/model-endpoint';
import { monitoringImage } from './private/monitoring-images';
import { assertRequiredProps } from '../core/private/props';

/**
 * CloudWatch namespaces Model Monitor and Clarify publish to for real-time endpoints, with the
 * dimensions `Endpoint` and `MonitoringSchedule`. (The SageMaker developer guide spells the data
 * namespace both with and without a leading slash and a trailing s; the containers publish to these.)
 */
export const MODEL_MONITOR_NAMESPACES = {
  dataQuality: 'aws/sagemaker/Endpoints/data-metrics',
  modelQuality: 'aws/sagemaker/Endpoints/model-metrics',
  bias: 'aws/sagemaker/Endpoints/bias-metrics',
  explainability: 'aws/sagemaker/Endpoints/explainability-metrics',
} as const;

/** The four kinds of monitoring SageMaker runs on an endpoint. */
export type MonitorKind = 'dataQuality' | 'modelQuality' | 'bias' | 'explainability';
export const MONITOR_KINDS: readonly MonitorKind[] = ['dataQuality', 'modelQuality', 'bias', 'explainability'];

/** The monitoring types of the SageMaker API, per kind. */
const MONITORING_TYPE: Record<MonitorKind, string> = {
  dataQuality: 'DataQuality',
  modelQuality: 'ModelQuality',
  bias: 'ModelBias',
  explainability: 'ModelExplainability',
};

/** Path segment of each kind in the S3 layout. */
const KIND_PATH: Record<MonitorKind, string> = {
  dataQuality: 'data-quality',
  modelQuality: 'model-quality',
  bias: 'bias',
  explainability: 'explainability',
};

/** How often a monitoring schedule runs. Model Monitor accepts hourly, every few hours and daily. */
export class MonitoringFrequency {
  /** At the start of every hour (UTC). */
  public static hourly(): MonitoringFrequency {
    return new MonitoringFrequency('cron(0 * ? * * *)', 'hourly');
  }

  /** Once a day at the given hour (UTC, 0-23). */
  public static daily(hourUtc = 0): MonitoringFrequency {
    if (!(Number.isInteger(hourUtc) && hourUtc >= 0 && hourUtc <= 23)) {
      throw new Error(`MonitoringFrequency.daily: hourUtc must be a whole hour from 0 to 23; got ${hourUtc}`);
    }
    return new MonitoringFrequency(`cron(0 ${hourUtc} ? * * *)`, `daily at ${String(hourUtc).padStart(2, '0')}:00 UTC`);
  }

  private constructor(
    /** The cron expression SageMaker is given. */
    public readonly expression: string,
    /** How the schedule reads in descriptions. */
    public readonly description: string,
  ) {}
}

export interface MonitorOptions {
  /**
   * When the monitor runs.
   * @default MonitoringFrequency.hourly()
   */
  readonly schedule?: MonitoringFrequency;
}

/** Data quality: statistics of the captured requests against the training data's baseline (feature drift). */
export interface DataQualityMonitorOptions extends MonitorOptions {}

/** Where a model's predictions sit in its captured output, for model-quality and bias monitoring. */
export interface PredictionAttributes {
  /**
   * The predicted label (index in CSV output or JSONPath in JSON output).
   * @default - none; give this or probabilityAttribute
   */
  readonly inferenceAttribute?: string;
  /**
   * The predicted probability (index in CSV output or JSONPath in JSON output).
   * @default - none
   */
  readonly probabilityAttribute?: string;
  /**
   * Probability at or above which a prediction counts as the positive class (binary classification).
   * @default - none
   */
  readonly probabilityThreshold?: number;
}

/** Model quality: accuracy, precision, recall, F1 (or regression errors) of the predictions, once ground truth is merged in. */
export interface ModelQualityMonitorOptions extends MonitorOptions, PredictionAttributes {
  /** The kind of model: `BinaryClassification`, `MulticlassClassification` or `Regression` (AWS SDK MonitoringProblemType). */
  readonly problemType: string;
  /**
   * Column of the baselining dataset that holds the true label (the baselining workflow compares the
   * predictions in the same dataset with it).
   * @default 'label'
   */
  readonly groundTruthAttribute?: string;
  /**
   * Captured data of this window before each run is merged with ground truth: ground truth arrives
   * late, so the window ends some time before the run.
   * @default - from 2 hours (hourly schedules) or 25 hours (daily) before the run...
   */
  readonly startTimeOffset?: Duration;
  /**
   * ...to 1 hour before it.
   * @default Duration.hours(1)
   */
  readonly endTimeOffset?: Duration;
}

/** One sensitive group whose outcomes bias monitoring compares with everyone else's. */
export interface BiasFacet {
  /** The feature (a name in `headers`). */
  readonly name: string;
  /**
   * The feature's values that form the group; for a numeric feature, one threshold above which a
   * row is in the group.
   * @default - every value is compared with every other
   */
  readonly valuesOrThreshold?: Array<string | number>;
}

/** Bias (SageMaker Clarify): post-training bias metrics of the predictions per facet. */
export interface BiasMonitorOptions extends MonitorOptions, PredictionAttributes {
  /** Name of the ground-truth label column. */
  readonly label: string;
  /** Label values (or one threshold) that are the favourable outcome. */
  readonly labelValuesOrThreshold: Array<string | number>;
  /** Sensitive groups, at least one. */
  readonly facets: BiasFacet[];
}

/** Explainability (SageMaker Clarify): SHAP feature attributions of the predictions, and their drift. */
export interface ExplainabilityMonitorOptions extends MonitorOptions, PredictionAttributes {
  /**
   * The row SHAP measures attributions against, one value per header.
   */
  readonly shapBaseline: Array<string | number>;
  /**
   * Samples SHAP draws per explained row.
   * @default 100
   */
  readonly numSamples?: number;
}

export interface ModelMonitorProps {
  /** The monitored endpoint; it must capture requests and responses (data capture). */
  readonly endpoint: ModelEndpoint;
  /** Bucket of the baselines, analysis configurations, ground truth and monitoring reports. */
  readonly bucket: s3.IBucket;
  /**
   * Key prefix of everything this monitor keeps in the bucket.
   * @default 'model-monitor/<modelName>'
   */
  readonly prefix?: string;
  /**
   * Key that encrypts the jobs' volumes and reports.
   * @default - the endpoint's key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Feature names of the model's input, in order. Required for bias and explainability (Clarify
   * reads the captured CSV by them) and used to name the per-feature drift metrics.
   * @default - none
   */
  readonly headers?: string[];
  /**
   * Data quality and feature drift.
   * @default - not monitored
   */
  readonly dataQuality?: DataQualityMonitorOptions;
  /**
   * Model quality against ground truth.
   * @default - not monitored
   */
  readonly modelQuality?: ModelQualityMonitorOptions;
  /**
   * Bias drift (Clarify).
   * @default - not monitored
   */
  readonly bias?: BiasMonitorOptions;
  /**
   * Feature-attribution drift (Clarify).
   * @default - not monitored
   */
  readonly explainability?: ExplainabilityMonitorOptions;
  /**
   * Key prefix, in the bucket, of the ground-truth labels (`yyyy/mm/dd/hh/*.jsonl`) that model-quality
   * and bias monitoring merge with the captured predictions.
   * @default '<prefix>/ground-truth'
   */
  readonly groundTruthPrefix?: string;
  /**
   * Instance type of the monitoring jobs (AWS SDK ProcessingInstanceType).
   * @default 'ml.m5.xlarge'
   */
  readonly instanceType?: string;
  /**
   * @default 1
   */
  readonly instanceCount?: number;
  /**
   * @default 20
   */
  readonly volumeSizeInGb?: number;
  /**
   * Longest a monitoring job may run; at most one hour, so that runs of an hourly schedule do not overlap.
   * @default Duration.hours(1)
   */
  readonly maxRuntime?: Duration;
  /**
   * Image of Model Monitor's analyzer (data and model quality).
   * @default - AWS's image in the stack's region
   */
  readonly modelMonitorImage?: string;
  /**
   * Image of SageMaker Clarify (bias and explainability).
   * @default - AWS's image in the stack's region
   */
  readonly clarifyImage?: string;
  /**
   * Execution role of the monitoring jobs.
   * @default - a new least-privilege SageMakerExecutionRole
   */
  readonly role?: SageMakerExecutionRole;
}

/** Where a monitor's baseline lives: what the baselining workflow writes and the schedule reads. */
export interface MonitorBaseline {
  /** Key of `constraints.json` (Clarify: `analysis.json`). */
  readonly constraintsKey: string;
  /** Key of `statistics.json`, for data quality. */
  readonly statisticsKey?: string;
  /** Key prefix the baselining job writes its output under. */
  readonly outputPrefix: string;
  /** Key of Clarify's analysis configuration, for bias and explainability. */
  readonly analysisConfigKey?: string;
  /** The analysis configuration itself, for the baselining workflow to write. */
  readonly analysisConfig?: Record<string, unknown>;
}

/** One monitor as deployed. */
export interface DeployedMonitor {
  readonly kind: MonitorKind;
  readonly schedule: sagemaker.CfnMonitoringSchedule;
  /** The schedule's name, the `MonitoringSchedule` dimension of its metrics. */
  readonly scheduleName: string;
  readonly scheduleArn: string;
  readonly jobDefinitionName: string;
  readonly frequency: MonitoringFrequency;
  readonly baseline: MonitorBaseline;
  /** Key prefix of its reports. */
  readonly reportsPrefix: string;
}

const PROCESSING_INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(ProcessingInstanceType));
const PROBLEM_TYPES: readonly string[] = Object.values(MonitoringProblemType);

/**
 * SageMaker Model Monitor on a ModelEndpoint: data quality (feature drift), model quality (with
 * ground truth merged in), bias and explainability (SageMaker Clarify), each a job definition and a
 * monitoring schedule, switched on by its options. Every job encrypts its volume and reports with the
 * customer-managed key, encrypts traffic between its instances, runs in the endpoint's VPC when the
 * endpoint has one, publishes CloudWatch metrics and uses a role that reads only this endpoint's
 * captured data, its baselines and its ground truth and writes only its reports.
 *
 * Baselines are produced by the MonitoringBaselineWorkflow at the keys in `baselines`. A job
 * definition cannot be updated in place, so its name carries a hash of its settings: a change
 * creates a new definition and repoints the schedule.
 */
export class ModelMonitor extends Construct {
  public readonly endpoint: ModelEndpoint;
  public readonly bucket: s3.IBucket;
  public readonly encryptionKey: kms.IKey;
  public readonly role: SageMakerExecutionRole;
  /** Key prefix of everything this monitor keeps in the bucket (no trailing slash). */
  public readonly prefix: string;
  public readonly groundTruthPrefix: string;
  /** Key prefix of the training datasets the baselining workflow may read. */
  public readonly datasetsPrefix: string;
  /** The monitors that are switched on. */
  public readonly monitors: readonly DeployedMonitor[];
  public readonly headers?: readonly string[];
  public readonly modelMonitorImage: string;
  public readonly clarifyImage?: string;
  public readonly instanceType: string;
  public readonly volumeSizeInGb: number;
  public readonly problemType?: string;
  /** Options the monitors were built with, for the baselining workflow. */
  public readonly options: Pick<ModelMonitorProps, MonitorKind>;

  /** The jobs' network settings, for baselining jobs that must run the same way. */
  public readonly networkConfig: { readonly enableInterContainerTrafficEncryption: boolean; readonly enableNetworkIsolation: boolean; readonly vpcConfig?: { readonly securityGroupIds: string[]; readonly subnets: string[] } };

  constructor(scope: Construct, id: string, props: ModelMonitorProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'ModelMonitor', props, { endpoint: 'construct', bucket: 'object' });
    const where = `${this.node.path} (ModelMonitor)`;
    const endpoint = props.endpoint;
    this.validate(props, where);
    this.endpoint = endpoint;
    this.bucket = props.bucket;
    this.encryptionKey = props.encryptionKey ?? endpoint.encryptionKey;
    this.prefix = (props.prefix ?? `model-monitor/${endpoint.modelName}`).replace(/^\/+|\/+$/g, '');
    this.groundTruthPrefix = (props.groundTruthPrefix ?? `${this.prefix}/ground-truth`).replace(/^\/+|\/+$/g, '');
    this.datasetsPrefix = `${this.prefix}/datasets`;
    this.headers = props.headers;
    this.instanceType = props.instanceType ?? 'ml.m5.xlarge';
    this.volumeSizeInGb = props.volumeSizeInGb ?? 20;
    this.problemType = props.modelQuality?.problemType;
    this.options = { dataQuality: props.dataQuality, modelQuality: props.modelQuality, bias: props.bias, explainability: props.explainability };
    const inVpc = endpoint.securityGroup !== undefined && endpoint.vpcSubnetIds !== undefined;
    this.role = props.role ?? new SageMakerExecutionRole(this, 'Role', { description: `Model Monitor jobs of ${endpoint.modelName}`, allowVpcAccess: inVpc });

    this.modelMonitorImage = props.modelMonitorImage ?? monitoringImage(this, 'model-monitor', where);
    const usesClarify = props.bias !== undefined || props.explainability !== undefined;
    if (usesClarify) this.clarifyImage = props.clarifyImage ?? monitoringImage(this, 'clarify', where);
    if (props.dataQuality || props.modelQuality) this.role.grantPullImage(this.modelMonitorImage);
    if (this.clarifyImage) this.role.grantPullImage(this.clarifyImage);

    this.networkConfig = {
      enableInterContainerTrafficEncryption: true,
      // Model Monitor publishes CloudWatch metrics from its container and Clarify calls a shadow
      // endpoint of the model: both need the network. In a VPC, the jobs only reach AWS through its
      // endpoints.
      enableNetworkIsolation: false,
      vpcConfig: inVpc ? { securityGroupIds: [endpoint.securityGroup!.securityGroupId], subnets: endpoint.vpcSubnetIds! } : undefined,
    };
    this.grantDataAccess(usesClarify);

    const maxRuntime = props.maxRuntime ?? Duration.hours(1);
    const common = {
      roleArn: this.role.role.roleArn,
      endpointName: endpoint.endpointName,
      jobResources: {
        clusterConfig: {
          instanceCount: props.instanceCount ?? 1,
          instanceType: this.instanceType,
          volumeSizeInGb: this.volumeSizeInGb,
          volumeKmsKeyId: this.encryptionKey.keyArn,
        },
      },
      networkConfig: this.networkConfig,
      stoppingCondition: { maxRuntimeInSeconds: maxRuntime.toSeconds() },
    };
    const output = (kind: MonitorKind) => ({
      kmsKeyId: this.encryptionKey.keyArn,
      monitoringOutputs: [{ s3Output: { localPath: '/opt/ml/processing/output', s3Uri: this.s3Uri(this.reportsPrefix(kind)), s3UploadMode: 'EndOfJob' } }],
    });
    const endpointInput = (attributes: PredictionAttributes, offsets?: { start: Duration; end: Duration }) => ({
      endpointName: endpoint.endpointName,
      localPath: '/opt/ml/processing/input/endpoint',
      s3DataDistributionType: 'FullyReplicated',
      s3InputMode: 'File',
      inferenceAttribute: attributes.inferenceAttribute,
      probabilityAttribute: attributes.probabilityAttribute,
      probabilityThresholdAttribute: attributes.probabilityThreshold,
      startTimeOffset: offsets && `-PT${offsets.start.toHours()}H`,
      endTimeOffset: offsets && `-PT${offsets.end.toHours()}H`,
    });
    const groundTruth = { s3Uri: this.s3Uri(this.groundTruthPrefix) };
    const publishMetrics = { publish_cloudwatch_metrics: 'Enabled' };
    const offsetsOf = (options: ModelQualityMonitorOptions | BiasMonitorOptions | ExplainabilityMonitorOptions) => {
      const frequency = options.schedule ?? MonitoringFrequency.hourly();
      const daily = frequency.expression !== MonitoringFrequency.hourly().expression;
      const start = ('startTimeOffset' in options && options.startTimeOffset) || Duration.hours(daily ? 25 : 2);
      const end = ('endTimeOffset' in options && options.endTimeOffset) || Duration.hours(1);
      return { start, end };
    };

    const monitors: DeployedMonitor[] = [];
    if (props.dataQuality) {
      const baseline = this.baselineOf('dataQuality');
      monitors.push(
        this.createMonitor(
          'dataQuality',
          props.dataQuality,
          {
            ...common,
            dataQualityAppSpecification: { imageUri: this.modelMonitorImage, environment: publishMetrics },
            dataQualityBaselineConfig: {
              constraintsResource: { s3Uri: this.s3Uri(baseline.constraintsKey) },
              statisticsResource: { s3Uri: this.s3Uri(baseline.statisticsKey!) },
            },
            dataQualityJobInput: { endpointInput: endpointInput({}) },
            dataQualityJobOutputConfig: output('dataQuality'),
          },
          (settings, name) => new sagemaker.CfnDataQualityJobDefinition(this, 'DataQualityJob', { ...settings, jobDefinitionName: name }),
        ),
      );
    }
    if (props.modelQuality) {
      const options = props.modelQuality;
      const baseline = this.baselineOf('modelQuality');
      monitors.push(
        this.createMonitor(
          'modelQuality',
          options,
          {
            ...common,
            modelQualityAppSpecification: { imageUri: this.modelMonitorImage, problemType: options.problemType, environment: publishMetrics },
            modelQualityBaselineConfig: { constraintsResource: { s3Uri: this.s3Uri(baseline.constraintsKey) } },
            modelQualityJobInput: { endpointInput: endpointInput(options, offsetsOf(options)), groundTruthS3Input: groundTruth },
            modelQualityJobOutputConfig: output('modelQuality'),
          },
          (settings, name) => new sagemaker.CfnModelQualityJobDefinition(this, 'ModelQualityJob', { ...settings, jobDefinitionName: name }),
        ),
      );
    }
    if (props.bias) {
      const options = props.bias;
      const baseline = this.baselineOf('bias');
      monitors.push(
        this.createMonitor(
          'bias',
          options,
          {
            ...common,
            modelBiasAppSpecification: { imageUri: this.clarifyImage!, configUri: this.s3Uri(baseline.analysisConfigKey!), environment: publishMetrics },
            modelBiasBaselineConfig: { constraintsResource: { s3Uri: this.s3Uri(baseline.constraintsKey) } },
            modelBiasJobInput: { endpointInput: endpointInput(options, offsetsOf(options)), groundTruthS3Input: groundTruth },
            modelBiasJobOutputConfig: output('bias'),
          },
          (settings, name) => new sagemaker.CfnModelBiasJobDefinition(this, 'BiasJob', { ...settings, jobDefinitionName: name }),
        ),
      );
    }
    if (props.explainability) {
      const options = props.explainability;
      const baseline = this.baselineOf('explainability');
      monitors.push(
        this.createMonitor(
          'explainability',
          options,
          {
            ...common,
            modelExplainabilityAppSpecification: { imageUri: this.clarifyImage!, configUri: this.s3Uri(baseline.analysisConfigKey!), environment: publishMetrics },
            modelExplainabilityBaselineConfig: { constraintsResource: { s3Uri: this.s3Uri(baseline.constraintsKey) } },
            modelExplainabilityJobInput: { endpointInput: endpointInput(options) },
            modelExplainabilityJobOutputConfig: output('explainability'),
          },
          (settings, name) => new sagemaker.CfnModelExplainabilityJobDefinition(this, 'ExplainabilityJob', { ...settings, jobDefinitionName: name }),
        ),
      );
    }
    this.monitors = monitors;
  }

  /** The monitor of one kind; throws naming the kinds that are on when it is off. */
  public monitor(kind: MonitorKind): DeployedMonitor {
    const found = this.monitors.find((monitor) => monitor.kind === kind);
    if (!found) {
      throw new Error(`${this.node.path}: ${kind} monitoring is not on; monitors: ${this.monitors.map((m) => m.kind).join(', ') || 'none'}`);
    }
    return found;
  }

  /** Whether a kind of monitoring is on. */
  public has(kind: MonitorKind): boolean {
    return this.monitors.some((monitor) => monitor.kind === kind);
  }

  /**
   * Model Monitor's drift distance of one feature from its baseline (`feature_baseline_drift_<feature>`).
   * Default: maximum over 1 hour.
   */
  public metricFeatureDrift(feature: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitorMetric('dataQuality', `feature_baseline_drift_${feature}`, { statistic: 'Maximum', ...props });
  }

  /** Share of non-null values of one feature in the captured data (`feature_non_null_<feature>`). Default: average over 1 hour. */
  public metricFeatureCompleteness(feature: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitorMetric('dataQuality', `feature_non_null_${feature}`, { statistic: 'Average', ...props });
  }

  /**
   * A model-quality metric: `accuracy`, `precision`, `recall`, `f1`, `auc` (classification) or `mae`,
   * `rmse`, `r2` (regression). Default: average over 1 hour.
   */
  public metricModelQuality(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.monitorMetric('modelQuality', metricName, { statistic: 'Average', ...props });
  }

  /** A metric one of the monitors publishes, with the Endpoint and MonitoringSchedule dimensions. Default period: 1 hour. */
  public monitorMetric(kind: MonitorKind, metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const monitor = this.monitor(kind);
    return new cloudwatch.Metric({
      namespace: MODEL_MONITOR_NAMESPACES[kind],
      metricName,
      dimensionsMap: { Endpoint: this.endpoint.endpointName, MonitoringSchedule: monitor.scheduleName },
      period: Duration.hours(1),
      ...props,
    });
  }

  /** The baseline keys of one kind of monitor (whether or not it is on). */
  public baselineOf(kind: MonitorKind): MonitorBaseline {
    const outputPrefix = `${this.prefix}/baselines/${KIND_PATH[kind]}`;
    if (kind === 'dataQuality') {
      return { outputPrefix, constraintsKey: `${outputPrefix}/constraints.json`, statisticsKey: `${outputPrefix}/statistics.json` };
    }
    if (kind === 'modelQuality') return { outputPrefix, constraintsKey: `${outputPrefix}/constraints.json` };
    return {
      outputPrefix,
      constraintsKey: `${outputPrefix}/analysis.json`,
      analysisConfigKey: `${this.prefix}/config/${KIND_PATH[kind]}/analysis_config.json`,
      analysisConfig: this.analysisConfig(kind),
    };
  }

  /** `s3://<bucket>/<key>` in this monitor's bucket. */
  public s3Uri(key: string): string {
    return this.bucket.s3UrlForObject(key);
  }

  private reportsPrefix(kind: MonitorKind): string {
    return `${this.prefix}/reports/${KIND_PATH[kind]}`;
  }

  /** Clarify's analysis configuration for monitoring (and baselining) bias or explainability. */
  private analysisConfig(kind: 'bias' | 'explainability'): Record<string, unknown> | undefined {
    const headers = this.headers ? [...this.headers] : undefined;
    if (kind === 'bias') {
      const bias = this.options.bias;
      if (!bias) return undefined;
      return {
        version: '1.0',
        dataset_type: 'text/csv',
        // The baselining dataset carries the label after the features.
        headers: headers && [...headers, bias.label],
        label: bias.label,
        label_values_or_threshold: bias.labelValuesOrThreshold,
        facet: bias.facets.map((facet) => ({ name_or_index: facet.name, value_or_threshold: facet.valuesOrThreshold })),
        methods: { post_training_bias: { methods: 'all' } },
        predictor: this.predictorConfig(bias),
      };
    }
    const explainability = this.options.explainability;
    if (!explainability) return undefined;
    return {
      version: '1.0',
      dataset_type: 'text/csv',
      headers,
      methods: { shap: { baseline: [explainability.shapBaseline], num_samples: explainability.numSamples ?? 100, agg_method: 'mean_abs', use_logit: false, save_local_shap_values: false } },
      predictor: this.predictorConfig(explainability),
    };
  }

  private predictorConfig(attributes: PredictionAttributes): Record<string, unknown> {
    const variant = this.endpoint.variants.find((v) => v.kind === 'production')!;
    const instanceType = variant.capacity.kind === 'instance' ? variant.capacity.instanceType : 'ml.m5.large';
    return {
      // Clarify queries a short-lived shadow endpoint of the production model (named sm-clarify-*).
      model_name: variant.sagemakerModelName,
      instance_type: instanceType,
      initial_instance_count: 1,
      content_type: 'text/csv',
      accept_type: 'text/csv',
      probability_threshold: attributes.probabilityThreshold,
      probability: attributes.probabilityAttribute !== undefined ? Number(attributes.probabilityAttribute) : undefined,
    };
  }

  private createMonitor<Settings extends object>(
    kind: MonitorKind,
    options: MonitorOptions,
    settings: Settings,
    create: (settings: Settings, name: string) => CfnResource & { attrJobDefinitionArn: string },
  ): DeployedMonitor {
    const frequency = options.schedule ?? MonitoringFrequency.hourly();
    // The name changes with the settings (a definition cannot be updated in place), so CloudFormation
    // creates the new definition before deleting the old one.
    const definition = create(settings, 'PENDING');
    const hash = createHash('sha256').update(JSON.stringify(Stack.of(this).resolve(settings))).digest('hex').slice(0, 8);
    const jobDefinitionName = `${Names.uniqueResourceName(definition, { maxLength: 54, separator: '-' })}-${hash}`;
    (definition as unknown as { jobDefinitionName: string }).jobDefinitionName = jobDefinitionName;
    const scheduleId = `${kind.charAt(0).toUpperCase()}${kind.slice(1)}Schedule`;
    const schedule = new sagemaker.CfnMonitoringSchedule(this, scheduleId, {
      monitoringScheduleName: 'PENDING',
      endpointName: this.endpoint.endpointName,
      monitoringScheduleConfig: {
        monitoringJobDefinitionName: jobDefinitionName,
        monitoringType: MONITORING_TYPE[kind],
        scheduleConfig: { scheduleExpression: frequency.expression },
      },
    });
    // SageMaker requires a name; it is generated from the construct path, like CloudFormation's own.
    // Lower case: SageMaker lowercases names in ARNs, and events and metrics must match the name exactly.
    schedule.monitoringScheduleName = Names.uniqueResourceName(schedule, { maxLength: 63, separator: '-' }).toLowerCase();
    schedule.node.addDependency(definition);
    return {
      kind,
      schedule,
      scheduleName: schedule.monitoringScheduleName,
      scheduleArn: schedule.attrMonitoringScheduleArn,
      jobDefinitionName,
      frequency,
      baseline: this.baselineOf(kind),
      reportsPrefix: this.reportsPrefix(kind),
    };
  }

  private grantDataAccess(usesClarify: boolean): void {
    const endpoint = this.endpoint;
    const policy = this.role.role.grantsPolicy;
    const captureBucket = endpoint.dataCaptureBucket!;
    const captureObjects = captureBucket.arnForObjects(`${endpoint.dataCaptureKeyPrefix}*`);
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ['s3:ListBucket'],
      resourceArns: [captureBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${endpoint.dataCaptureKeyPrefix}*`] } },
    });
    iam.Grant.addToPrincipal({ grantee: this.role, actions: ['s3:GetObject'], resourceArns: [captureObjects] });
    acknowledgeWildcardResource(policy, captureObjects, "Model Monitor reads the capture files SageMaker names at run time under this endpoint's capture prefix; read-only.");

    const prefixed = (prefix: string) => this.bucket.arnForObjects(`${prefix}/*`);
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${this.prefix}/*`, `${this.groundTruthPrefix}/*`] } },
    });
    const readable = [`${this.prefix}/baselines`, `${this.prefix}/config`, this.groundTruthPrefix];
    iam.Grant.addToPrincipal({ grantee: this.role, actions: ['s3:GetObject'], resourceArns: readable.map(prefixed) });
    iam.Grant.addToPrincipal({ grantee: this.role, actions: ['s3:PutObject'], resourceArns: [prefixed(`${this.prefix}/reports`)] });
    for (const prefix of readable) {
      acknowledgeWildcardResource(policy, prefixed(prefix), `The monitoring jobs read the baselines, Clarify configurations and hourly ground-truth partitions under ${prefix}/; read-only.`);
    }
    acknowledgeWildcardResource(policy, prefixed(`${this.prefix}/reports`), 'Each monitoring execution writes its report files under a folder named after the run time; put-only, limited to the reports prefix.');

    // Decrypt the captured data and baselines; encrypt volumes and reports.
    endpoint.encryptionKey.grantDecrypt(this.role);
    this.bucket.encryptionKey?.grant(this.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    this.encryptionKey.grant(this.role, 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:DescribeKey');
    iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ['kms:CreateGrant'],
      resourceArns: [this.encryptionKey.keyArn],
      conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    });

    if (usesClarify) {
      // Clarify starts a short-lived shadow endpoint of the model (sm-clarify-*), queries it and deletes it.
      const stack = Stack.of(this);
      const arn = (type: string) => `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:${type}/sm-clarify-*`;
      this.role.role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ClarifyShadowEndpoint',
          actions: [
            'sagemaker:CreateEndpoint',
            'sagemaker:CreateEndpointConfig',
            'sagemaker:DescribeEndpoint',
            'sagemaker:DeleteEndpoint',
            'sagemaker:DeleteEndpointConfig',
            'sagemaker:InvokeEndpoint',
            'sagemaker:AddTags',
          ],
          resources: [arn('endpoint'), arn('endpoint-config')],
        }),
      );
      for (const type of ['endpoint', 'endpoint-config']) {
        acknowledgeWildcardResource(policy, arn(type), 'Clarify names its shadow endpoint and configuration sm-clarify-<run> at run time; the grant stops at that prefix.');
      }
    }
  }

  private validate(props: ModelMonitorProps, where: string): void {
    const problems: string[] = [];
    const endpoint = props.endpoint;
    if (!endpoint.dataCaptureBucket || !endpoint.dataCaptureKeyPrefix) {
      throw new Error(`${where}: endpoint: '${endpoint.modelName}' has no data capture; Model Monitor reads captured requests, turn on dataCapture`);
    }
    if (!props.dataQuality && !props.modelQuality && !props.bias && !props.explainability) {
      problems.push('dataQuality, modelQuality, bias, explainability: switch on at least one monitor');
    }
    const instanceType = props.instanceType;
    if (instanceType !== undefined && !Token.isUnresolved(instanceType) && !PROCESSING_INSTANCE_TYPES.has(instanceType)) {
      problems.push(`instanceType: must be a SageMaker processing instance type such as ml.m5.xlarge (AWS SDK ProcessingInstanceType); got '${instanceType}'`);
    }
    const count = props.instanceCount;
    if (count !== undefined && !(Number.isInteger(count) && count >= 1 && count <= 100)) problems.push(`instanceCount: must be a whole number from 1 to 100; got ${count}`);
    const volume = props.volumeSizeInGb;
    if (volume !== undefined && !(Number.isInteger(volume) && volume >= 1 && volume <= 16384)) problems.push(`volumeSizeInGb: must be a whole number from 1 to 16384; got ${volume}`);
    const runtime = props.maxRuntime?.toSeconds();
    if (runtime !== undefined && !(runtime >= 1 && runtime <= 3600)) problems.push(`maxRuntime: must be from 1 second to 1 hour; got ${runtime} s`);
    const quality = props.modelQuality;
    if (quality) {
      if (!PROBLEM_TYPES.includes(quality.problemType)) {
        problems.push(`modelQuality.problemType: must be one of ${PROBLEM_TYPES.join(', ')} (AWS SDK MonitoringProblemType); got '${quality.problemType}'`);
      }
      if (quality.inferenceAttribute === undefined && quality.probabilityAttribute === undefined) {
        problems.push('modelQuality: give inferenceAttribute or probabilityAttribute (where the prediction is in the captured output)');
      }
      const start = quality.startTimeOffset?.toHours({ integral: false });
      const end = quality.endTimeOffset?.toHours({ integral: false }) ?? 1;
      if (start !== undefined && !(Number.isInteger(start) && start > end)) {
        problems.push(`modelQuality.startTimeOffset: must be a whole number of hours, larger than endTimeOffset (${end} h); got ${start} h`);
      }
      if (!(Number.isInteger(end) && end >= 1)) problems.push(`modelQuality.endTimeOffset: must be a whole number of hours, at least 1; got ${end} h`);
    }
    for (const [name, attributes] of [['modelQuality', props.modelQuality], ['bias', props.bias], ['explainability', props.explainability]] as const) {
      const threshold = attributes?.probabilityThreshold;
      if (threshold !== undefined && !(threshold > 0 && threshold < 1)) problems.push(`${name}.probabilityThreshold: must be between 0 and 1; got ${threshold}`);
    }
    const headers = props.headers ?? [];
    if (new Set(headers).size !== headers.length) problems.push(`headers: must be unique; got ${headers.join(', ')}`);
    if ((props.bias || props.explainability) && headers.length === 0) {
      problems.push('headers: bias and explainability monitoring need the feature names of the captured CSV');
    }
    if (props.bias) {
      if (props.bias.facets.length === 0) problems.push('bias.facets: name at least one sensitive feature');
      props.bias.facets.forEach((facet, index) => {
        if (headers.length > 0 && !headers.includes(facet.name)) problems.push(`bias.facets[${index}].name: '${facet.name}' is not one of headers (${headers.join(', ')})`);
      });
      if (props.bias.labelValuesOrThreshold.length === 0) problems.push('bias.labelValuesOrThreshold: give the favourable label values or one threshold');
      if (props.bias.inferenceAttribute === undefined && props.bias.probabilityAttribute === undefined) {
        problems.push('bias: give inferenceAttribute or probabilityAttribute (where the prediction is in the captured output)');
      }
    }
    if (props.explainability && headers.length > 0 && props.explainability.shapBaseline.length !== headers.length) {
      problems.push(`explainability.shapBaseline: needs one value per header (${headers.length}); got ${props.explainability.shapBaseline.length}`);
    }
    if (endpoint.variants.every((variant) => variant.kind !== 'production' || variant.capacity.kind === 'serverless') && (props.bias || props.explainability)) {
      problems.push('bias, explainability: Clarify needs an instance-based production variant to start its shadow endpoint from');
    }
    if (problems.length > 0) {
      throw new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);
    }
  }
}
