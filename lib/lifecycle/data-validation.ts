import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MlFunction } from '../core/ml-function';
import type { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';

// The data-validation service of the seed's "Microservices for ML": a function (lambda/validate-data)
// that checks a dataset against a constraints document and quarantines the rows that fail, and the
// Step Functions steps that call it until it is done and route on its verdict. TrainingPipeline runs it
// before preprocessing (`dataValidation`); the steps can go into any workflow that has the dataset's URI.

/**
 * The tag of the validator's resume-state objects (`<report>_state/<run>/<call>.json`): a lifecycle rule of the
 * reports bucket with this tag filter expires them (the blueprint's run-artifacts bucket does, after 7 days).
 */
export const DATA_VALIDATION_STATE_TAG = { key: 'ml-platform:purpose', value: 'validation-resume-state' } as const;

/** The namespace of the validator's EMF metrics (RecordsValidated, RecordsQuarantined, ValidationViolations). */
export const DATA_VALIDATION_METRICS_NAMESPACE = 'MlPlatform/DataValidation';

/** How a dataset's objects are written. */
export enum DatasetFormat {
  /** CSV with a header line naming the columns. */
  CSV = 'csv',
  /** JSON Lines: one JSON object a line. */
  JSON_LINES = 'jsonl',
}

const KEY_PREFIX = /^([A-Za-z0-9!_.*'()-]+\/)*$/;

export interface DataValidationProps {
  /** The bucket of the datasets to validate. */
  readonly dataBucket: s3.IBucket;
  /** The key prefix (ending in `/`) the datasets lie under, e.g. `churn/datasets/`. */
  readonly datasetsPrefix: string;
  /**
   * The key prefix (ending in `/`) of the constraints documents in `dataBucket`, e.g. `churn/constraints/`:
   * in a versioned bucket each document's versions are its history, and every report names the version that
   * judged the data.
   */
  readonly constraintsPrefix: string;
  /** The bucket the reports and quarantined rows go to. */
  readonly reportsBucket: s3.IBucket;
  /** The key prefix (ending in `/`) under which each run's report lies, e.g. `churn/runs/`. */
  readonly reportsPrefix: string;
  /** Encrypts what the function writes (SSE-KMS) and its logs; it decrypts the datasets. */
  readonly encryptionKey: kms.IKey;
  /**
   * The name of what is validated, for the function's description and its metrics' `service` dimension.
   * @example 'churn'
   */
  readonly name: string;
  /** Run the function in this VPC (isolated subnets); it reaches S3 through the VPC's gateway endpoint. */
  readonly vpc?: ec2.IVpc;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Where the warning alarm on violated constraints notifies (it goes to ALARM when a validation ends
   * with a violation, and back to OK an hour later).
   * @default - no alarm
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/** Where the validation steps read their input and write their result, as JSONPath expressions of the state. */
export interface DataValidationStepOptions {
  /** An expression giving the dataset's `s3://bucket/prefix/` (e.g. `States.Format('s3://data/{}', $.config.dataPrefix)`). */
  readonly datasetUri: string;
  /** An expression giving the constraints document's `s3://bucket/key`. */
  readonly constraintsUri: string;
  /** An expression giving the run's report location, `s3://bucket/prefix/` (ending in `/`). */
  readonly reportUri: string;
  /** The format of the dataset's objects. */
  readonly format: DatasetFormat;
  /** Where the result goes in the state (`status`, `rows`, `valid`, `quarantined`, `violations`, `violationCount`, `reportUri`). */
  readonly resultPath: string;
  /** What runs when the dataset passes. */
  readonly passed: sfn.IChainable;
  /** What runs when it fails a constraint (the result is at `resultPath`). */
  readonly failed: sfn.IChainable;
  /** Where an error goes (bad input, unreadable constraints, S3 failing after retries); the error is at `$.error`. */
  readonly errored: sfn.IChainable;
}

/**
 * The data-validation service (seed: Microservices for ML, data validation): the `validate-data` function,
 * granted what it reads and writes, and {@link DataValidation.steps}, the states that call it until it is
 * done and route on its verdict. A dataset is checked against a constraints document (types, completeness,
 * ranges, categories, distribution against a baseline; `npm run suggest-constraints` makes one from a
 * reference dataset); rows that fail a row-level check are quarantined with their reasons beside the
 * report, never dropped.
 */
export class DataValidation extends Construct {
  public readonly function: lambda.Function;
  /** The `service` dimension of the function's metrics. */
  public readonly serviceName: string;
  /** [WARNING] a validation ended with violated constraints (the run stopped before training); with `alarmAction`. */
  public readonly violationsAlarm?: cloudwatch.Alarm;
  private readonly props: DataValidationProps;

  constructor(scope: Construct, id: string, props: DataValidationProps) {
    super(scope, id);
    const problems = checkPropType(props, 'props', 'object');
    if (problems.length === 0) {
      problems.push(
        ...checkPropType(props.dataBucket, 'dataBucket', 'object'),
        ...checkPropType(props.reportsBucket, 'reportsBucket', 'object'),
        ...checkPropType(props.encryptionKey, 'encryptionKey', 'object'),
        ...checkPropType(props.name, 'name', 'string'),
      );
      for (const name of ['datasetsPrefix', 'constraintsPrefix', 'reportsPrefix'] as const) {
        const value: unknown = props[name];
        const type = checkPropType(value, name, 'string');
        if (type.length > 0) problems.push(...type);
        else if ((value as string).length === 0 || !KEY_PREFIX.test(value as string)) problems.push(`${name}: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got ${JSON.stringify(value)}`);
      }
      if (typeof props.name === 'string' && !/^[a-z][a-z0-9-]{0,40}$/.test(props.name)) problems.push(`name: must be 1-41 lowercase letters, digits or hyphens, starting with a letter; got ${JSON.stringify(props.name)}`);
    }
    if (problems.length > 0) throw invalidProps(`${this.node.path} (DataValidation)`, problems);
    this.props = props;
    this.serviceName = `data-validation-${props.name}`;
    const validator = new MlFunction(this, 'Validator', {
      handler: 'validate-data',
      description: `Validates the ${props.name} datasets against their constraints`,
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'a workflow, which retries and catches its errors',
      calls: 'S3',
      timeout: Duration.minutes(15),
      memorySize: 1024,
      // One validation per run; two let an on-demand run beside a scheduled one.
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: DATA_VALIDATION_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        STATE_OBJECT_TAG: `${DATA_VALIDATION_STATE_TAG.key}=${DATA_VALIDATION_STATE_TAG.value}`,
      },
    });
    this.function = validator.function;
    const role = validator.role;
    const datasets = props.dataBucket.arnForObjects(`${props.datasetsPrefix}*`);
    const constraints = props.dataBucket.arnForObjects(`${props.constraintsPrefix}*`);
    const reports = props.reportsBucket.arnForObjects(`${props.reportsPrefix}*`);
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:ListBucket'], resourceArns: [props.dataBucket.bucketArn], conditions: { StringLike: { 's3:prefix': `${props.datasetsPrefix}*` } } });
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject'], resourceArns: [datasets] });
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject', 's3:GetObjectVersion'], resourceArns: [constraints] });
    // Its reports, quarantined rows and the state it resumes from.
    iam.Grant.addToPrincipal({ grantee: role, actions: ['s3:GetObject', 's3:PutObject'], resourceArns: [reports] });
    // The resume-state objects carry DATA_VALIDATION_STATE_TAG, so that a lifecycle rule can expire them.
    iam.Grant.addToPrincipal({
      grantee: role,
      actions: ['s3:PutObjectTagging'],
      resourceArns: [reports],
      conditions: { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': [DATA_VALIDATION_STATE_TAG.key] } },
    });
    props.encryptionKey.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
    for (const bucket of [props.dataBucket, props.reportsBucket]) {
      if (bucket.encryptionKey !== undefined && bucket.encryptionKey !== props.encryptionKey) bucket.encryptionKey.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
    }
    acknowledgeWildcardResource(role.grantsPolicy, datasets, `Reads the dataset a run names, under ${props.datasetsPrefix}; read-only.`);
    acknowledgeWildcardResource(role.grantsPolicy, constraints, `Reads the constraints document a run names, and its versions, under ${props.constraintsPrefix}; read-only.`);
    acknowledgeWildcardResource(role.grantsPolicy, reports, `Writes each run's report, quarantined rows and resume state under ${props.reportsPrefix}<run>/, a prefix named at run time.`);
    if (props.alarmAction) {
      this.violationsAlarm = new cloudwatch.Alarm(this, 'Violations', {
        metric: this.metricViolations({ period: Duration.hours(1) }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] a dataset of ${props.name} failed validation: the report names each violated constraint (the run stopped before training)`,
      });
      this.violationsAlarm.addAlarmAction(props.alarmAction);
    }
  }

  /**
   * Acknowledges, for cdk-nag, the grant the steps' Lambda task gives the workflow's role: the validator by
   * version or alias (`<function ARN>:*`), this one function only. Call it with the workflow that runs the steps.
   */
  public acknowledgeInvokeGrant(workflow: MlWorkflow): void {
    acknowledgeWildcardResource(workflow.role.grantsPolicy, `${this.function.functionArn}:*`, 'The Lambda task may invoke the validator by version or alias (<function ARN>:*); the grant names that one function only.');
  }

  /**
   * The states of one validation, in `scope` (the workflow's construct): the function called until it is
   * done (it stops a minute before its deadline and returns a continuation), then a choice on its verdict.
   * A `DataValidationInputError` is not retried; any other error (S3 failing) is retried three times, then
   * goes to `errored`.
   */
  public steps(scope: Construct, options: DataValidationStepOptions): sfn.IChainable {
    const resultPath = options.resultPath;
    const start = new sfn.Pass(scope, 'Start validation', { result: sfn.Result.fromObject({ continuation: null }), resultPath });
    const validate = new tasks.LambdaInvoke(scope, 'Validate dataset', {
      comment: 'Checks the dataset against its constraints and quarantines the rows that fail; stops before its deadline with a continuation.',
      lambdaFunction: this.function,
      payload: sfn.TaskInput.fromObject({
        'datasetUri.$': options.datasetUri,
        format: options.format,
        'constraintsUri.$': options.constraintsUri,
        'reportUri.$': options.reportUri,
        kmsKeyId: this.props.encryptionKey.keyArn,
        'continuation.$': `${resultPath}.continuation`,
      }),
      resultSelector: {
        'status.$': '$.Payload.status',
        'rows.$': '$.Payload.rows',
        'valid.$': '$.Payload.valid',
        'quarantined.$': '$.Payload.quarantined',
        'objects.$': '$.Payload.objects',
        'violations.$': '$.Payload.violations',
        'violationCount.$': '$.Payload.violationCount',
        'reportUri.$': '$.Payload.reportUri',
        'done.$': '$.Payload.done',
        'continuation.$': '$.Payload.continuation',
      },
      resultPath,
      retryOnServiceExceptions: true,
    });
    // Bad input, unreadable constraints, a changed object: the same call would fail again.
    validate.addRetry({ errors: ['DataValidationInputError'], maxAttempts: 0 });
    validate.addRetry({ errors: ['Lambda.TooManyRequestsException'], interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
    // S3 failing after the SDK's own retries: the call starts again from the state it saved.
    validate.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(10), backoffRate: 2, maxAttempts: 3, jitterStrategy: sfn.JitterType.FULL });
    validate.addCatch(options.errored, { errors: ['States.ALL'], resultPath: '$.error' });
    return start.next(validate).next(
      new sfn.Choice(scope, 'Dataset valid?')
        .when(sfn.Condition.booleanEquals(`${resultPath}.done`, false), validate)
        .when(sfn.Condition.stringEquals(`${resultPath}.status`, 'passed'), options.passed)
        .otherwise(options.failed),
    );
  }

  /** Records checked, summed over each period. */
  public metricRecordsValidated(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RecordsValidated', props);
  }

  /** Records quarantined (a row-level check failed, or the line was no row). */
  public metricRecordsQuarantined(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RecordsQuarantined', props);
  }

  /** Dataset constraints violated, counted when each validation ends. */
  public metricViolations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ValidationViolations', props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: DATA_VALIDATION_METRICS_NAMESPACE, metricName, dimensionsMap: { service: this.serviceName }, statistic: 'Sum', period: Duration.hours(1), ...props });
  }
}
