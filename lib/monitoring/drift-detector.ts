import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { terminalQueue } from '../core/private/terminal-queue';
import { MlFunction } from '../core/ml-function';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { ModelEndpoint } from '../serving/model-endpoint';
import { assertRequiredProps } from '../core/private/props';

/** Namespace of the drift detector's metrics. */
export const DRIFT_METRICS_NAMESPACE = 'MlPlatform/Drift';

export interface DriftDetectorProps {
  /** The endpoint whose captured requests are checked; it must have data capture. */
  readonly endpoint: ModelEndpoint;
  /** Where the drift baseline (per-feature bins, proportions and a reference sample) is kept. */
  readonly baseline: { readonly bucket: s3.IBucket; readonly key: string };
  /** Key that encrypts the function's logs and its dead-letter queue. */
  readonly encryptionKey: kms.IKey;
  /**
   * How often the newest captured data is checked; each run looks back over the same span.
   * @default Duration.minutes(15)
   */
  readonly interval?: Duration;
  /**
   * WARNING when the largest population stability index of any feature exceeds this.
   * @default 0.2 (the usual "significant shift" threshold)
   */
  readonly psiThreshold?: number;
  /**
   * Notified of drift and of detector failures.
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * Run the function in this VPC.
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Near-real-time data drift: Model Monitor runs at most hourly, so this function reads the newest
 * captured requests every few minutes and measures each feature against the baseline: population
 * stability index and the two-sample Kolmogorov–Smirnov statistic for numeric features, PSI and a
 * chi-square test for categorical ones. Results are `MlPlatform/Drift` metrics per model and
 * feature; a missing or malformed baseline or unexpected captured fields are reported as
 * `DriftDetectorErrors` with the reason, never as a silent zero.
 */
export class DriftDetector extends Construct {
  public readonly function: lambda.Function;
  public readonly rule: events.Rule;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** Model family whose drift is measured. */
  public readonly modelName: string;

  constructor(scope: Construct, id: string, props: DriftDetectorProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'DriftDetector', props, { endpoint: 'construct', baseline: 'object', encryptionKey: 'object' });
    const endpoint = props.endpoint;
    const where = `${this.node.path} (DriftDetector)`;
    if (!endpoint.dataCaptureBucket || !endpoint.dataCaptureKeyPrefix) {
      throw new Error(`${where}: endpoint: '${endpoint.modelName}' has no data capture; turn on dataCapture to detect drift`);
    }
    const interval = props.interval ?? Duration.minutes(15);
    const minutes = interval.toMinutes({ integral: false });
    if (!(Number.isInteger(minutes) && minutes >= 1 && minutes <= 1440)) {
      throw new Error(`${where}: interval: must be a whole number of minutes from 1 to 1440; got ${minutes}`);
    }
    const psiThreshold = props.psiThreshold ?? 0.2;
    if (!(psiThreshold > 0)) throw new Error(`${where}: psiThreshold: must be > 0; got ${psiThreshold}`);
    this.modelName = endpoint.modelName;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.deadLetterQueue = terminalQueue(this, 'DeadLetterQueue', { encryptionKey: props.encryptionKey, removalPolicy, holds: 'the dead-letter queue of the drift detector' });
    const detector = new MlFunction(this, 'Function', {
      handler: 'detect-drift',
      description: `Measures data drift of ${endpoint.modelName}'s captured requests against its baseline`,
      encryptionKey: props.encryptionKey,
      calls: 'S3',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      reservedConcurrency: 1,
      deadLetterQueue: this.deadLetterQueue,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      vpc: props.vpc,
      environment: {
        CAPTURE_BUCKET: endpoint.dataCaptureBucket.bucketName,
        CAPTURE_PREFIX: endpoint.dataCaptureKeyPrefix,
        BASELINE_BUCKET: props.baseline.bucket.bucketName,
        BASELINE_KEY: props.baseline.key,
        LOOKBACK_MINUTES: String(minutes),
        PSI_THRESHOLD: String(psiThreshold),
        MODEL_NAME: endpoint.modelName,
        POWERTOOLS_SERVICE_NAME: 'drift-detector',
        POWERTOOLS_METRICS_NAMESPACE: DRIFT_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    this.function = detector.function;

    // Read-only: list and read this endpoint's captured data, read the one baseline object.
    const captureObjects = endpoint.dataCaptureBucket.arnForObjects(`${endpoint.dataCaptureKeyPrefix}*`);
    iam.Grant.addToPrincipal({
      grantee: this.function,
      actions: ['s3:ListBucket'],
      resourceArns: [endpoint.dataCaptureBucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${endpoint.dataCaptureKeyPrefix}*`] } },
    });
    iam.Grant.addToPrincipal({ grantee: this.function, actions: ['s3:GetObject'], resourceArns: [captureObjects, props.baseline.bucket.arnForObjects(props.baseline.key)] });
    endpoint.encryptionKey.grantDecrypt(this.function);
    props.baseline.bucket.encryptionKey?.grantDecrypt(this.function);
    acknowledgeWildcardResource(
      detector.role.grantsPolicy,
      captureObjects,
      "SageMaker writes one capture file per batch under <endpoint>/<variant>/yyyy/mm/dd/hh/, names it chooses; the grant is read-only and limited to this endpoint's capture prefix.",
    );

    this.rule = new events.Rule(this, 'Schedule', {
      description: `Drift check of ${endpoint.modelName} every ${minutes} minutes`,
      schedule: events.Schedule.rate(interval),
    });
    this.rule.addTarget(new targets.LambdaFunction(this.function, { retryAttempts: 2, maxEventAge: Duration.minutes(minutes), deadLetterQueue: this.deadLetterQueue }));

    if (props.alarmAction) this.createAlarms(props.alarmAction, psiThreshold);
  }

  /** The largest PSI over the model's features in each run. Default: maximum over 15 minutes. */
  public metricMaxPsi(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MaxPSI', { statistic: 'Maximum', ...props });
  }

  /** Runs that could not measure drift (missing or malformed baseline, unexpected captured fields). Default: sum over 15 minutes. */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('DriftDetectorErrors', { statistic: 'Sum', ...props });
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: DRIFT_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { Model: this.modelName },
      period: Duration.minutes(15),
      ...props,
    });
  }

  private createAlarms(action: cloudwatch.IAlarmAction, psiThreshold: number): void {
    const add = (alarmId: string, metric: cloudwatch.IMetric, threshold: number, description: string, missing: cloudwatch.TreatMissingData) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: missing,
        alarmDescription: description,
      });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      this.alarms.push(alarm);
    };
    add('Drift', this.metricMaxPsi(), psiThreshold, `[WARNING] ${this.modelName}: a feature's population stability index is above ${psiThreshold}`, cloudwatch.TreatMissingData.NOT_BREACHING);
    add(
      'CannotMeasure',
      this.metricErrors(),
      0,
      `[WARNING] ${this.modelName}: drift cannot be measured (baseline missing or malformed, or unexpected captured fields): see the detector's logs`,
      cloudwatch.TreatMissingData.NOT_BREACHING,
    );
    add(
      'DetectorFailures',
      this.function.metricErrors({ period: Duration.minutes(15), statistic: 'Sum' }),
      0,
      `[WARNING] ${this.modelName}: the drift detector failed (S3 access); drift is not being measured`,
      cloudwatch.TreatMissingData.NOT_BREACHING,
    );
  }
}
