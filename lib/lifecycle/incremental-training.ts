import { ArnFormat, Duration, RemovalPolicy, Size, SizeRoundingBehavior, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { workflowLambdaTask } from '../core/private/lambda-task';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';
import type { MlWorkflowOptions } from '../core/workflow-options';
import { DatasetFormat } from './data-validation';
import type { TrainingPipeline } from './training-pipeline';

/** The namespace of the incremental-training metrics (dimension `service`). */
export const INCREMENTAL_TRAINING_METRICS_NAMESPACE = 'MlPlatform/OnlineLearning';

export interface IncrementalTrainingProps extends MlWorkflowOptions {
  /**
   * The family's training pipeline: each update is one of its runs, fine-tuning the approved version on the window
   * of new records, compared with that version on the same test split, registered in its group.
   */
  readonly trainingPipeline: TrainingPipeline;
  /**
   * The constraints document in the pipeline's data bucket that judges each micro-batch.
   * @default - the pipeline's data-validation constraints, else `<family>/constraints/constraints.json`
   */
  readonly constraintsKey?: string;
  /**
   * The format the windows are written in: the pipeline's datasets' format, which its preprocessing reads.
   * @default - the pipeline's validated format, else DatasetFormat.CSV
   */
  readonly format?: DatasetFormat;
  /** The fewest validated records a window must hold before an update trains on it. @default 1000 */
  readonly minRecords?: number;
  /** The least time from the end of one update to the start of the next. @default Duration.hours(24) */
  readonly cooldown?: Duration;
  /** How often arrived micro-batches are validated and the guard rails checked. @default rate(15 minutes) */
  readonly schedule?: scheduler.ScheduleExpression;
  /**
   * Hyperparameters of an update (e.g. fewer rounds or a lower learning rate than training from scratch).
   * @default - the pipeline's fine-tuning hyperparameters
   */
  readonly hyperparameters?: Record<string, string>;
  /** How long the delivery stream buffers records before it writes a micro-batch. @default Duration.minutes(5) */
  readonly bufferingInterval?: Duration;
  /** How much it buffers before it writes one. @default Size.mebibytes(5) */
  readonly bufferingSize?: Size;
  /** What happens to the state table when it leaves the stack. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** Run the function in this VPC (isolated subnets); it reaches S3 and DynamoDB through the VPC's gateway endpoints. */
  readonly vpc?: ec2.IVpc;
}

/**
 * Incremental training from streamed labelled events (seed pattern 17, online learning).
 *
 * Producers put labelled events (the features a prediction was made from and the outcome) on a Firehose delivery
 * stream, which writes them as micro-batches under `<family>/stream/arrived/<yyyy/MM/dd/HH>/` in the pipeline's
 * data bucket, encrypted with the customer-managed key. On a schedule the workflow has the `online-learning`
 * function validate each micro-batch against the family's constraints (valid records into the open window
 * `<family>/datasets/increments/<window>/`, rejected rows quarantined with their reasons, a batch that fails a
 * dataset constraint kept whole beside its report), then checks the guard rails: at least `minRecords` validated
 * records, no update running, and `cooldown` passed since the last one. When they allow it the window closes and
 * the workflow starts the training pipeline on it, warm-starting from the latest approved version's artifact
 * (SageMaker incremental training: the model as an input channel) and comparing the new model with that version on
 * the same test split; a model worse than the champion, or below the pipeline's threshold, is refused. A
 * registered version goes through the family's approval and deployment as any other. Every update is recorded
 * with its outcome in the state table.
 */
export class IncrementalTraining extends Construct {
  public readonly function: lambda.Function;
  public readonly workflow: MlWorkflow;
  public readonly table: dynamodb.Table;
  /** The delivery stream labelled events are put on (PutRecord / PutRecordBatch). */
  public readonly deliveryStream: firehose.CfnDeliveryStream;
  public readonly deliveryStreamName: string;
  public readonly deliveryStreamArn: string;
  /** The `service` dimension of the metrics. */
  public readonly serviceName: string;
  public readonly modelFamily: string;
  /** [WARNING] a micro-batch failed a dataset constraint and was set aside; with `failureAlarmAction`. */
  public readonly rejectedBatchesAlarm?: cloudwatch.Alarm;
  /** The defaults of each run, as the console's input may override them. */
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: IncrementalTrainingProps) {
    super(scope, id);
    const problems = validate(props);
    if (problems.length > 0) throw invalidProps(`${this.node.path} (IncrementalTraining)`, problems);
    const stack = Stack.of(this);
    const pipeline = props.trainingPipeline;
    const family = pipeline.modelFamily;
    this.modelFamily = family;
    this.serviceName = `online-learning-${family}`;
    const key = props.encryptionKey;
    const bucket = pipeline.dataBucket;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const format = props.format ?? pipeline.datasetFormat ?? DatasetFormat.CSV;
    const constraintsKey = props.constraintsKey ?? (pipeline.defaults.constraintsKey as string | undefined) ?? `${family}/constraints/constraints.json`;

    // --- The delivery stream ------------------------------------------------------------------------
    // L1: the L2 S3 destination grants its role read and write on the whole bucket and key; this role may only
    // write under <family>/stream/.
    const streamPrefix = `${family}/stream/`;
    const deliveryLogs = new logs.LogGroup(this, 'DeliveryLogs', { encryptionKey: key, retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR, removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN });
    const deliveryLogStream = new logs.LogStream(this, 'DeliveryLogStream', { logGroup: deliveryLogs, removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN });
    const deliveryRole = new ManagedPolicyRole(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', { conditions: { StringEquals: { 'sts:ExternalId': stack.account } } }),
      description: `Writes the labelled events of ${family} to S3`,
    });
    iam.Grant.addToPrincipal({ grantee: deliveryRole, actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], resourceArns: [bucket.bucketArn] });
    iam.Grant.addToPrincipal({ grantee: deliveryRole, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: [bucket.arnForObjects(`${streamPrefix}*`)] });
    key.grant(deliveryRole, 'kms:GenerateDataKey', 'kms:Decrypt');
    const deliveryLogStreamArn = stack.formatArn({
      service: 'logs',
      resource: 'log-group',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: `${deliveryLogs.logGroupName}:log-stream:${deliveryLogStream.logStreamName}`,
    });
    iam.Grant.addToPrincipal({ grantee: deliveryRole, actions: ['logs:PutLogEvents'], resourceArns: [deliveryLogStreamArn] });
    acknowledgeWildcardResource(deliveryRole.grantsPolicy, bucket.arnForObjects(`${streamPrefix}*`), `Firehose writes micro-batches and delivery errors under ${streamPrefix}, in keys it names by time; write-only.`);
    const buffering = { intervalInSeconds: (props.bufferingInterval ?? Duration.minutes(5)).toSeconds(), sizeInMBs: (props.bufferingSize ?? Size.mebibytes(5)).toMebibytes() };
    this.deliveryStream = new firehose.CfnDeliveryStream(this, 'EventStream', {
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: key.keyArn },
      extendedS3DestinationConfiguration: {
        bucketArn: bucket.bucketArn,
        roleArn: deliveryRole.roleArn,
        prefix: `${streamPrefix}arrived/!{timestamp:yyyy/MM/dd/HH}/`,
        errorOutputPrefix: `${streamPrefix}delivery-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/`,
        bufferingHints: buffering,
        compressionFormat: 'UNCOMPRESSED',
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: key.keyArn } },
        cloudWatchLoggingOptions: { enabled: true, logGroupName: deliveryLogs.logGroupName, logStreamName: deliveryLogStream.logStreamName },
      },
    });
    // Firehose checks its role when the stream is created: the policy must exist first.
    this.deliveryStream.node.addDependency(deliveryRole);
    this.deliveryStreamName = this.deliveryStream.ref;
    this.deliveryStreamArn = this.deliveryStream.attrArn;

    // --- The state ---------------------------------------------------------------------------------
    this.table = new dynamodb.Table(this, 'State', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expiresAt',
      deletionProtection: removalPolicy !== RemovalPolicy.DESTROY,
      removalPolicy,
    });
    const backupReason =
      'Point-in-time recovery gives 35 days of restore points of the window counters and update records; the records themselves expire by TTL and the data they count is in the versioned bucket.';
    const capacityReason = 'On-demand (PAY_PER_REQUEST) capacity scales with traffic; provisioned-capacity autoscaling does not apply.';
    Validations.of(this.table).acknowledge(
      { id: 'HIPAA.Security-DynamoDBInBackupPlan', reason: backupReason },
      { id: 'NIST.800.53.R5-DynamoDBInBackupPlan', reason: backupReason },
      { id: 'HIPAA.Security-DynamoDBAutoscalingEnabled', reason: capacityReason },
      { id: 'NIST.800.53.R5-DynamoDBAutoscalingEnabled', reason: capacityReason },
    );

    // --- The function ------------------------------------------------------------------------------
    const fn = new MlFunction(this, 'Collector', {
      handler: 'online-learning',
      description: `Validates the streamed micro-batches of ${family} and decides when to update the model`,
      encryptionKey: key,
      invokedSynchronouslyBy: 'a workflow, which retries and catches its errors',
      calls: 'S3 and DynamoDB',
      timeout: Duration.minutes(15),
      memorySize: 1536,
      // Ticks never overlap (the state's lease keeps them apart); a second lets an operator's run meet a scheduled one.
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        STATE_TABLE: this.table.tableName,
        DATA_BUCKET: bucket.bucketName,
        MODEL_FAMILY: family,
        DATASET_FORMAT: format,
        KMS_KEY_ID: key.keyArn,
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: INCREMENTAL_TRAINING_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    this.function = fn.function;
    const arrived = bucket.arnForObjects(`${streamPrefix}arrived/*`);
    const written = [bucket.arnForObjects(`${family}/datasets/increments/*`), bucket.arnForObjects(`${streamPrefix}quarantine/*`), bucket.arnForObjects(`${streamPrefix}rejected/*`)];
    iam.Grant.addToPrincipal({ grantee: fn.role, actions: ['s3:ListBucket'], resourceArns: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': `${streamPrefix}arrived/*` } } });
    iam.Grant.addToPrincipal({ grantee: fn.role, actions: ['s3:GetObject', 's3:DeleteObject'], resourceArns: [arrived] });
    iam.Grant.addToPrincipal({ grantee: fn.role, actions: ['s3:GetObject'], resourceArns: [bucket.arnForObjects(constraintsKey)] });
    iam.Grant.addToPrincipal({ grantee: fn.role, actions: ['s3:PutObject'], resourceArns: written });
    key.grant(fn.role, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey');
    // The constraints document is encrypted with the bucket's own key, when that is another one.
    if (bucket.encryptionKey !== undefined && bucket.encryptionKey !== key) bucket.encryptionKey.grant(fn.role, 'kms:Decrypt');
    this.table.grant(fn.role, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem');
    acknowledgeWildcardResource(fn.role.grantsPolicy, arrived, `Reads and, once filed, deletes the micro-batches the delivery stream writes under ${streamPrefix}arrived/ (the bucket keeps the deleted version).`);
    for (const resource of written) acknowledgeWildcardResource(fn.role.grantsPolicy, resource, 'Writes each micro-batch\'s validated records, quarantined rows or rejected batch under a key named by its window and batch; write-only.');

    // --- The workflow ------------------------------------------------------------------------------
    const cooldown = props.cooldown ?? Duration.hours(24);
    // The workflow outlives the pipeline run it waits for; an update's lock lapses when the workflow would have timed out.
    const timeout = pipeline.runTimeout.plus(Duration.hours(1));
    this.defaults = {
      constraintsKey,
      settings: {
        minRecords: props.minRecords ?? 1000,
        cooldownSeconds: cooldown.toSeconds(),
        updateTimeoutSeconds: timeout.toSeconds(),
      },
      fineTuneHyperparameters: { ...((pipeline.defaults.fineTuneHyperparameters as Record<string, string> | undefined) ?? {}), ...(props.hyperparameters ?? {}) },
    };
    const errors = new FailureNotice(this, props.notificationTopic, `Model ${family}: incremental training failed`, 'Incremental training failed');
    const invoke = (stateId: string, comment: string, payload: Record<string, unknown>, resultPath: string, fields: readonly string[], catchTo: sfn.IChainable) =>
      workflowLambdaTask(this, stateId, { comment, lambdaFunction: this.function, payload, resultPath, fields, permanentErrors: ['OnlineLearningInputError', 'ConfigError'], catchTo });
    const finish = (stateId: string, outcome: 'registered' | 'refused' | 'failed', detail: string, extra: Record<string, unknown> = {}) =>
      invoke(
        stateId,
        `Records the update as ${outcome} and starts the cooldown.`,
        { action: 'finish', 'now.$': '$$.State.EnteredTime', 'window.$': '$.tick.window', outcome, 'detail.$': detail, ...extra },
        '$.finished',
        ['lockReleased'],
        errors.entry,
      );
    const verdict = (stateId: string, result: string, fields: Record<string, string>) =>
      new sfn.Pass(this, stateId, {
        parameters: {
          result,
          model: family,
          'window.$': '$.tick.window',
          'records.$': '$.tick.records',
          ...Object.fromEntries(Object.entries(fields).map(([name, path]) => [`${name}.$`, path])),
          'console.$': executionConsoleUrlExpression(this),
        },
        resultPath: '$.verdict',
      });

    // Refused before training: no approved version to warm-start from, or one the training jobs cannot read.
    const refusedBeforeTraining = finish('Record refusal', 'refused', '$.refusal.text')
      .next(verdict('Refusal verdict', 'refused', { reason: '$.refusal.text' }))
      .next(errors.notify('Notify refusal', `Model ${family}: incremental update refused`, '$.verdict'))
      .next(new sfn.Succeed(this, 'Refused before training'));
    const refuse = (stateId: string, reason: string) => new sfn.Pass(this, stateId, { parameters: { 'text.$': reason }, resultPath: '$.refusal' }).next(refusedBeforeTraining);

    const failed = finish('Record failure', 'failed', "States.Format('{}: {}', $.updateError.Error, $.updateError.Cause)")
      .next(verdict('Failure verdict', 'failed', { error: '$.updateError.Error', cause: '$.updateError.Cause' }))
      .next(errors.notify('Notify update failure', `Model ${family}: incremental update failed`, '$.verdict'))
      .next(new sfn.Fail(this, 'Update failed', { error: 'IncrementalUpdateFailed', causePath: '$.verdict.cause' }));
    const registered = finish('Record registration', 'registered', "States.Format('registered {}', $.pipeline.output.modelPackageArn)", { 'modelPackageArn.$': '$.pipeline.output.modelPackageArn' })
      .next(verdict('Registered verdict', 'registered', { modelPackageArn: '$.pipeline.output.modelPackageArn', champion: '$.champion.arn', pipelineExecution: '$.pipeline.executionArn' }))
      .next(errors.notify('Notify registration', `Model ${family}: incremental update registered`, '$.verdict'))
      .next(new sfn.Succeed(this, 'Update registered'));
    const refusedByGate = finish('Record gate refusal', 'refused', '$.pipeline.output.reason')
      .next(verdict('Gate refusal verdict', 'refused', { reason: '$.pipeline.output.reason', champion: '$.champion.arn', pipelineExecution: '$.pipeline.executionArn' }))
      .next(errors.notify('Notify gate refusal', `Model ${family}: incremental update refused`, '$.verdict'))
      .next(new sfn.Succeed(this, 'Update refused'));

    const startPipeline = new tasks.StepFunctionsStartExecution(this, 'Train on window', {
      comment: "Runs the training pipeline on the closed window, fine-tuning the champion and comparing the result with it on the window's test split.",
      stateMachine: pipeline.workflow.stateMachine,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      // The window names the run: a retried start finds the run it started instead of training twice.
      name: sfn.JsonPath.format(`${family}-{}`, sfn.JsonPath.stringAt('$.tick.window')),
      input: sfn.TaskInput.fromObject({
        modelFamily: family,
        dataPrefix: sfn.JsonPath.stringAt('$.tick.dataPrefix'),
        useTransferLearning: true,
        baseModelUri: sfn.JsonPath.stringAt('$.champion.modelDataUrl'),
        championModelUri: sfn.JsonPath.stringAt('$.champion.modelDataUrl'),
        fineTuneHyperparameters: sfn.JsonPath.objectAt('$.config.fineTuneHyperparameters'),
        trigger: { source: 'online-learning', window: sfn.JsonPath.stringAt('$.tick.window'), records: sfn.JsonPath.numberAt('$.tick.records') },
      }),
      resultSelector: { 'executionArn.$': '$.ExecutionArn', 'output.$': '$.Output' },
      resultPath: '$.pipeline',
    });
    startPipeline.addRetry({ errors: ['StepFunctions.ThrottlingException', 'StepFunctions.SdkClientException'], interval: Duration.seconds(5), backoffRate: 2, maxAttempts: 4, jitterStrategy: sfn.JitterType.FULL });
    startPipeline.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.updateError' });
    startPipeline.next(new sfn.Choice(this, 'Registered?').when(sfn.Condition.stringEquals('$.pipeline.output.result', 'registered'), registered).otherwise(refusedByGate));

    const runsPrefix = `s3://${pipeline.artifactsBucket.bucketName}/${family}/runs/`;
    // After the window closed, a failure is the update's: it is recorded (the lock released, the cooldown started)
    // rather than left to hold the lock until it lapses.
    const recordOnFailure = <T extends sfn.TaskStateBase>(task: T): T => {
      errors.retry(task);
      task.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.updateError' });
      return task;
    };
    const describeChampion = recordOnFailure(
      tasks.CallAwsService.jsonPath(this, 'Describe champion', {
        service: 'sagemaker',
        action: 'describeModelPackage',
        iamResources: [pipeline.modelPackageGroup.modelPackageArns],
        iamAction: 'sagemaker:DescribeModelPackage',
        parameters: { 'ModelPackageName.$': 'States.ArrayGetItem($.approved.arns, 0)' },
        resultSelector: { 'arn.$': '$.ModelPackageArn', 'modelDataUrl.$': 'States.ArrayGetItem($.InferenceSpecification.Containers[*].ModelDataUrl, 0)' },
        resultPath: '$.champion',
      }),
    );
    describeChampion.next(
      new sfn.Choice(this, 'Champion artifact readable?')
        .when(sfn.Condition.stringMatches('$.champion.modelDataUrl', `${runsPrefix}*`), startPipeline)
        .otherwise(
          refuse(
            'Champion unreadable',
            `States.Format('the approved version {} has its artifact at {}, outside ${runsPrefix}: the training jobs warm-start only from the runs of the pipeline', $.champion.arn, $.champion.modelDataUrl)`,
          ),
        ),
    );
    const listApproved = recordOnFailure(
      tasks.CallAwsService.jsonPath(this, 'Find champion', {
        service: 'sagemaker',
        action: 'listModelPackages',
        iamResources: ['*'],
        iamAction: 'sagemaker:ListModelPackages',
        parameters: { ModelPackageGroupName: pipeline.modelPackageGroup.modelPackageGroupName, ModelApprovalStatus: 'Approved', SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 1 },
        resultSelector: { 'arns.$': '$.ModelPackageSummaryList[*].ModelPackageArn', 'count.$': 'States.ArrayLength($.ModelPackageSummaryList)' },
        resultPath: '$.approved',
      }),
    );
    listApproved.next(
      new sfn.Choice(this, 'Has champion?')
        .when(sfn.Condition.numberGreaterThan('$.approved.count', 0), describeChampion)
        .otherwise(refuse('No champion', `States.Format('no approved version of ${family} to warm-start from; window {} stays for a full training run', $.tick.window)`)),
    );

    const tick = invoke(
      'Validate micro-batches',
      'Validates the micro-batches that arrived, files their records, and checks the guard rails (minimum records, an update running, the cooldown).',
      { action: 'tick', 'now.$': '$$.State.EnteredTime', 'constraintsKey.$': '$.config.constraintsKey', 'settings.$': '$.config.settings' },
      '$.tick',
      ['decision', 'reason', 'window', 'dataPrefix', 'records', 'objects', 'openWindow', 'pendingRecords', 'filed', 'backlog'],
      errors.entry,
    );
    const noUpdate = new sfn.Succeed(this, 'No update', { comment: 'Too few records, an update running, or the cooldown not over: the next run checks again.', outputPath: '$.tick' });
    tick.next(new sfn.Choice(this, 'Update now?').when(sfn.Condition.stringEquals('$.tick.decision', 'start'), listApproved).otherwise(noUpdate));

    const defaults = new sfn.Pass(this, 'Load defaults', { parameters: this.defaults, resultPath: '$.defaults' });
    // An operator's input may override any default, e.g. { "settings": { "minRecords": 1, "cooldownSeconds": 0, ... } }.
    const merge = new sfn.Pass(this, 'Merge input over defaults', { parameters: { 'config.$': 'States.JsonMerge($.defaults, $$.Execution.Input, false)' } });
    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition: defaults.next(merge).next(tick),
      description: `Incremental training of ${family} from its streamed labelled events`,
      encryptionKey: key,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout,
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'sagemaker:ListModelPackages has no resource-level permissions.',
    });
    grantPublishTo(props.notificationTopic, this.workflow.role);
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, `${this.function.functionArn}:*`, 'The Lambda task may invoke the collector by version or alias (<function ARN>:*); the grant names that one function only.');
    // The .sync task describes and, when stopped, stops the pipeline run it started: executions of that one state machine.
    const pipelineRuns = stack.formatArn({
      service: 'states',
      resource: 'execution',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      resourceName: `${stack.splitArn(pipeline.workflow.stateMachine.stateMachineArn, ArnFormat.COLON_RESOURCE_NAME).resourceName}*`,
    });
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, pipelineRuns, "The task waits for the training pipeline run it started (states:DescribeExecution, states:StopExecution): that state machine's executions only, whose names Step Functions completes.");
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, pipeline.modelPackageGroup.modelPackageArns, "Model versions get their ARNs (…/<group>/<version>) when registered; the grant covers this group's versions only, describe-only.");

    const schedulerRole = new ManagedPolicyRole(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Starts the incremental training of ${family}`,
    });
    new scheduler.Schedule(this, 'Schedule', {
      description: `Validates the streamed micro-batches of ${family} and updates the model when the guard rails allow`,
      schedule: props.schedule ?? scheduler.ScheduleExpression.rate(Duration.minutes(15)),
      target: new schedulerTargets.StepFunctionsStartExecution(this.workflow.stateMachine, { role: schedulerRole, input: scheduler.ScheduleTargetInput.fromObject({ trigger: 'schedule' }) }),
    });

    if (props.failureAlarmAction) {
      this.rejectedBatchesAlarm = new cloudwatch.Alarm(this, 'RejectedBatches', {
        metric: this.metricMicroBatchesRejected({ period: Duration.hours(1) }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] a micro-batch of ${family} failed a dataset constraint and was set aside under ${streamPrefix}rejected/ with its report`,
      });
      this.rejectedBatchesAlarm.addAlarmAction(props.failureAlarmAction);
    }
  }

  /** Lets the grantee put labelled events on the delivery stream. */
  public grantPutRecords(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['firehose:PutRecord', 'firehose:PutRecordBatch'], resourceArns: [this.deliveryStreamArn] });
  }

  /** Records in the micro-batches filed. */
  public metricRecordsArrived(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RecordsArrived', props);
  }

  /** Records that passed validation and went into a window. */
  public metricRecordsValidated(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RecordsValidated', props);
  }

  /** Records quarantined with their reasons (and those of micro-batches set aside). */
  public metricRecordsQuarantined(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RecordsQuarantined', props);
  }

  /** Micro-batches that failed a dataset constraint, set aside whole. */
  public metricMicroBatchesRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('MicroBatchesRejected', props);
  }

  /** Updates started on a closed window. */
  public metricUpdatesTriggered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesTriggered', props);
  }

  /** Runs with records enough that waited for a running update or the cooldown. */
  public metricUpdatesDeferred(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesDeferred', props);
  }

  /** Updates refused: worse than the champion or below the threshold, or no champion to start from. */
  public metricUpdatesRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesRefused', props);
  }

  /** Updates registered, on their way through approval and deployment. */
  public metricUpdatesRegistered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesRegistered', props);
  }

  /** Updates whose training run failed. */
  public metricUpdatesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesFailed', props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: INCREMENTAL_TRAINING_METRICS_NAMESPACE, metricName, dimensionsMap: { service: this.serviceName }, statistic: 'Sum', period: Duration.hours(1), ...props });
  }
}

const KEY = /^[A-Za-z0-9!_.*'()/-]+$/;

function validate(props: IncrementalTrainingProps): string[] {
  const problems = checkPropType(props, 'props', 'object');
  if (problems.length > 0) return problems;
  problems.push(
    ...checkPropType(props.trainingPipeline, 'trainingPipeline', 'construct'),
    ...checkPropType(props.notificationTopic, 'notificationTopic', 'object'),
    ...checkPropType(props.encryptionKey, 'encryptionKey', 'object'),
  );
  const family = Construct.isConstruct(props.trainingPipeline) ? props.trainingPipeline.modelFamily : undefined;
  if (props.constraintsKey !== undefined) {
    const key: unknown = props.constraintsKey;
    if (typeof key !== 'string' || !KEY.test(key) || key.endsWith('/') || (family !== undefined && !key.startsWith(`${family}/constraints/`))) {
      problems.push(`constraintsKey: must be an object key under ${family ?? '<family>'}/constraints/; got ${JSON.stringify(key)}`);
    }
  }
  if (props.format !== undefined && !(Object.values(DatasetFormat) as string[]).includes(props.format)) problems.push(`format: must be a DatasetFormat (csv or jsonl); got ${JSON.stringify(props.format)}`);
  if (props.minRecords !== undefined && !(Number.isInteger(props.minRecords) && props.minRecords >= 1 && props.minRecords <= 100_000_000)) {
    problems.push(`minRecords: must be a whole number from 1 to 100000000; got ${JSON.stringify(props.minRecords)}`);
  }
  const cooldown = props.cooldown?.toSeconds({ integral: false });
  if (cooldown !== undefined && !Token.isUnresolved(cooldown) && !(Number.isInteger(cooldown) && cooldown >= 0 && cooldown <= 30 * 86_400)) {
    problems.push(`cooldown: must be a whole number of seconds up to 30 days; got ${props.cooldown!.toHumanString()}`);
  }
  const interval = props.bufferingInterval?.toSeconds({ integral: false });
  if (interval !== undefined && !(Number.isInteger(interval) && interval >= 0 && interval <= 900)) problems.push(`bufferingInterval: must be a whole number of seconds from 0 to 900 (Firehose's range); got ${props.bufferingInterval!.toHumanString()}`);
  const size = props.bufferingSize?.toMebibytes({ rounding: SizeRoundingBehavior.NONE });
  if (props.bufferingSize !== undefined && !(size !== undefined && Number.isInteger(size) && size >= 1 && size <= 128)) problems.push(`bufferingSize: must be a whole number of MiB from 1 to 128 (Firehose's range); got ${props.bufferingSize.toHumanString()}`);
  if (props.hyperparameters !== undefined) {
    if (typeof props.hyperparameters !== 'object' || props.hyperparameters === null) problems.push('hyperparameters: must be an object of strings');
    else for (const [name, value] of Object.entries(props.hyperparameters)) if (typeof value !== 'string') problems.push(`hyperparameters.${name}: must be a string (SageMaker passes hyperparameters as strings); got ${JSON.stringify(value)}`);
  }
  return problems;
}
