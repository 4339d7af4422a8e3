import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventsources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { terminalQueue } from '../core/private/terminal-queue';
import { grantPublishTo } from '../core/alarm-topic';
import { validateExecutionInput, type InputField } from '../core/input-validation';
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource, acknowledgeWildcardResourcesOf } from '../core/private/nag';
import type { FeatureGroup } from './feature-group';
import { assertRequiredProps } from '../core/private/props';

export interface FeatureIngestionProps {
  /** The feature groups records are written to; each record names its group. */
  readonly featureGroups: FeatureGroup[];
  /** Bucket the batch layer reads chunk files from (CSV with a header row, or JSON Lines). */
  readonly landingBucket: s3.IBucket;
  /** Key that encrypts the stream, the queues, the logs and the workflow's state. */
  readonly encryptionKey: kms.IKey;
  /** Topic told about every batch ingestion. */
  readonly notificationTopic: sns.ITopic;
  /**
   * Chunk files ingested at once by the batch layer.
   * @default 10
   */
  readonly batchConcurrency?: number;
  /**
   * Run the functions in this VPC.
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the logs and queues.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Notified when records are rejected, when ingestion fails, and when a batch run fails.
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/**
 * The Lambda architecture's two ingestion layers for Feature Store:
 * - speed layer: producers put `{ "featureGroup": "...", "record": { ... } }` on a Kinesis stream; a
 *   function validates each record against its group's definition and writes it (PutRecord), sending
 *   a bad record to the rejected-records queue with the reason and the original payload, and
 *   reporting only the records that failed to write as batch item failures, so a good record is never
 *   dropped and a bad one never blocks the shard;
 * - batch layer: a workflow reads the chunk files under an S3 prefix with a Distributed Map, ingests
 *   them in bounded parallel batches and reports the ingested and rejected counts of each chunk.
 */
export class FeatureIngestion extends Construct {
  public readonly stream: kinesis.Stream;
  /** Records that failed validation, with the reason and the original payload, for repair and replay. */
  public readonly rejectedRecords: sqs.Queue;
  /** Stream batches the speed layer could not write after all retries. */
  public readonly ingestionFailures: sqs.Queue;
  public readonly speedLayer: lambda.Function;
  public readonly batchLayer: lambda.Function;
  public readonly batchWorkflow: MlWorkflow;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: FeatureIngestionProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'FeatureIngestion', props, { featureGroups: 'array', landingBucket: 'object', encryptionKey: 'object', notificationTopic: 'object' });
    if (props.featureGroups.length === 0) {
      throw new Error(`${this.node.path} (FeatureIngestion): featureGroups: must hold at least one feature group`);
    }
    const concurrency = props.batchConcurrency ?? 10;
    if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 1000)) {
      throw new Error(`${this.node.path} (FeatureIngestion): batchConcurrency: must be a whole number from 1 to 1000; got ${concurrency}`);
    }
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const definitions = Stack.of(this).toJsonString(props.featureGroups.map((group) => group.definition));

    this.stream = new kinesis.Stream(this, 'Stream', {
      streamMode: kinesis.StreamMode.ON_DEMAND,
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: props.encryptionKey,
      retentionPeriod: Duration.hours(24),
      removalPolicy,
    });
    Validations.of(this.stream).acknowledge({
      id: 'AwsSolutions-KDS3',
      reason: 'Feature records may hold personal data: like every store of the platform the stream is encrypted with its customer-managed key (HIPAA/NIST key control); the KMS cost is accepted.',
    });
    const holds = 'the destination of records that could not be ingested';
    this.rejectedRecords = terminalQueue(this, 'RejectedRecords', { encryptionKey: props.encryptionKey, removalPolicy, holds });
    this.ingestionFailures = terminalQueue(this, 'IngestionFailures', { encryptionKey: props.encryptionKey, removalPolicy, holds });

    const functionProps = {
      encryptionKey: props.encryptionKey,
      calls: 'SageMaker Feature Store, SQS and S3',
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      vpc: props.vpc,
      environment: {
        FEATURE_GROUPS: definitions,
        REJECTED_RECORDS_QUEUE_URL: this.rejectedRecords.queueUrl,
        POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Features',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    };
    this.speedLayer = new MlFunction(this, 'SpeedLayer', {
      ...functionProps,
      handler: 'ingest-features',
      description: 'Validates streamed feature records and writes them to Feature Store',
      invokedSynchronouslyBy: 'its Kinesis event-source mapping, which retries failed records and sends what it cannot write to the ingestion-failures queue',
      timeout: Duration.minutes(1),
      reservedConcurrency: 50,
      environment: { ...functionProps.environment, POWERTOOLS_SERVICE_NAME: 'feature-ingestion' },
    }).function;
    this.speedLayer.addEventSource(
      new eventsources.KinesisEventSource(this.stream, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(1),
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: 10,
        maxRecordAge: Duration.hours(24),
        onFailure: new eventsources.SqsDlq(this.ingestionFailures),
      }),
    );
    // The on-failure destination grant is written by aws-cdk-lib (SqsDlq -> Queue.grantSendMessages),
    // which grants the queue key's GenerateDataKey* and ReEncrypt* families.
    const speedLayerPolicy = (this.node.findChild('SpeedLayer') as MlFunction).role.grantsPolicy;
    const dlqReason = "aws-cdk-lib's on-failure destination grant for the encrypted ingestion-failures queue; the KMS actions are limited to the platform key.";
    Validations.of(speedLayerPolicy).acknowledge(
      { id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', reason: dlqReason },
      { id: 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', reason: dlqReason },
    );
    this.batchLayer = new MlFunction(this, 'BatchLayer', {
      ...functionProps,
      handler: 'ingest-features-batch',
      description: 'Ingests one chunk file of feature records into Feature Store',
      invokedSynchronouslyBy: 'the batch ingestion workflow, which retries and catches its errors',
      timeout: Duration.minutes(15),
      memorySize: 1024,
      reservedConcurrency: concurrency,
      environment: { ...functionProps.environment, POWERTOOLS_SERVICE_NAME: 'feature-batch-ingestion' },
    }).function;
    for (const fn of [this.speedLayer, this.batchLayer]) {
      for (const group of props.featureGroups) group.grantWrite(fn);
      iam.Grant.addToPrincipal({ grantee: fn, actions: ['sqs:SendMessage'], resourceArns: [this.rejectedRecords.queueArn] });
      props.encryptionKey.grant(fn, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    grantReadChunks(props.landingBucket, this.batchLayer);
    acknowledgeWildcardResource(
      (this.node.findChild('BatchLayer') as MlFunction).role.grantsPolicy,
      props.landingBucket.arnForObjects('*'),
      'The batch layer reads whichever chunk files an ingestion run names; the grant is read-only and limited to the landing bucket.',
    );

    this.batchWorkflow = this.createBatchWorkflow(props, concurrency);
    if (props.alarmAction) this.createAlarms(props.alarmAction);
  }

  private createBatchWorkflow(props: FeatureIngestionProps, concurrency: number): MlWorkflow {
    const ingestChunk = new tasks.LambdaInvoke(this, 'Ingest chunk', {
      lambdaFunction: this.batchLayer,
      payload: sfn.TaskInput.fromObject({
        'featureGroup.$': '$.featureGroup',
        'format.$': '$.format',
        bucket: props.landingBucket.bucketName,
        'key.$': '$.key',
      }),
      resultSelector: { 'key.$': '$.Payload.key', 'ingested.$': '$.Payload.ingested', 'rejected.$': '$.Payload.rejected', 'failed.$': '$.Payload.failed' },
      retryOnServiceExceptions: true,
    });
    // PutRecord is idempotent for the same record, so a chunk that failed part-way is simply run
    // again; bad input (IngestionInputError) and configuration errors are not retried.
    ingestChunk.addRetry({
      errors: ['FeatureStoreRetriableError', 'RejectedQueueError'],
      interval: Duration.seconds(10),
      backoffRate: 2,
      maxAttempts: 3,
      jitterStrategy: sfn.JitterType.FULL,
    });

    const map = new sfn.DistributedMap(this, 'Ingest chunks', {
      itemReader: new sfn.S3ObjectsItemReader({ bucket: props.landingBucket, prefix: sfn.JsonPath.stringAt('$.config.prefix') }),
      itemSelector: {
        'featureGroup.$': '$.config.featureGroup',
        'format.$': '$.config.format',
        'key.$': '$$.Map.Item.Value.Key',
      },
      maxConcurrency: concurrency,
      resultPath: '$.chunks',
    });
    map.itemProcessor(ingestChunk);

    const errorsNotice = new tasks.SnsPublish(this, 'Notify failure', {
      topic: props.notificationTopic,
      subject: 'Feature batch ingestion failed',
      message: sfn.TaskInput.fromJsonPathAt('$.error'),
      resultPath: sfn.JsonPath.DISCARD,
    }).next(new sfn.Fail(this, 'Ingestion failed', { errorPath: '$.error.Error', causePath: '$.error.Cause' }));
    map.addCatch(errorsNotice, { errors: ['States.ALL'], resultPath: '$.error' });
    const report = new tasks.SnsPublish(this, 'Report counts', {
      topic: props.notificationTopic,
      subject: 'Feature batch ingestion finished',
      message: sfn.TaskInput.fromObject({ 'featureGroup.$': '$.config.featureGroup', 'prefix.$': '$.config.prefix', 'chunks.$': '$.chunks' }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    const done = new sfn.Succeed(this, 'Ingested', { outputPath: '$.chunks' });

    const groups = props.featureGroups.map((group) => group.featureGroupName);
    const knownGroup = sfn.Condition.or(...groups.map((name) => sfn.Condition.stringEquals('$.config.featureGroup', name)));
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        { path: '$.config.featureGroup', type: 'string', check: { condition: knownGroup, expectation: `one of ${groups.join(', ')}` } },
        { path: '$.config.prefix', type: 'string' },
        {
          path: '$.config.format',
          type: 'string',
          check: { condition: sfn.Condition.or(sfn.Condition.stringEquals('$.config.format', 'csv'), sfn.Condition.stringEquals('$.config.format', 'jsonl')), expectation: "'csv' or 'jsonl'" },
        },
      ],
      map.next(report).next(done),
    );
    const definition = new sfn.Pass(this, 'Read input', { parameters: { 'config.$': '$$.Execution.Input' } }).next(validated);

    const workflow = new MlWorkflow(this, 'BatchWorkflow', {
      definition,
      description: 'Batch ingestion of feature records from S3 into Feature Store',
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.removalPolicy,
      timeout: Duration.hours(12),
      failureAlarmAction: props.alarmAction,
    });
    grantPublishTo(props.notificationTopic, workflow.role);
    grantReadChunks(props.landingBucket, workflow.role);
    // aws-cdk-lib gives the Distributed Map its own policy for its child executions, which it names
    // only at run time; it cannot be routed into the role's managed policy.
    const mapPolicy = workflow.stateMachine.node.tryFindChild('DistributedMapPolicy') as iam.Policy | undefined;
    if (mapPolicy) {
      acknowledgeWildcardResourcesOf(mapPolicy, "The Distributed Map starts, describes and stops its child executions, which Step Functions names at run time under this state machine's execution ARN.");
      const inline = "aws-cdk-lib attaches the Distributed Map's child-execution permissions as a separate policy of the state machine; it holds only those permissions, scoped to this state machine's executions.";
      Validations.of(mapPolicy).acknowledge({ id: 'HIPAA.Security-IAMNoInlinePolicy', reason: inline }, { id: 'NIST.800.53.R5-IAMNoInlinePolicy', reason: inline });
    }
    acknowledgeWildcardResource(
      workflow.role.grantsPolicy,
      props.landingBucket.arnForObjects('*'),
      'The Distributed Map lists and reads the chunk files under the prefix each run names; the grant is read-only and limited to the landing bucket.',
    );
    acknowledgeWildcardResource(
      workflow.role.grantsPolicy,
      `${this.batchLayer.functionArn}:*`,
      'The Lambda task may invoke the batch function by version or alias (<function ARN>:*); the grant names that one function only.',
    );
    return workflow;
  }

  private createAlarms(action: cloudwatch.IAlarmAction): void {
    const add = (alarmId: string, metric: cloudwatch.IMetric, description: string, threshold = 0) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    };
    add('RejectedRecordsAlarm', this.rejectedRecords.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), '[WARNING] feature records were rejected by validation: see the rejected-records queue');
    add('IngestionFailuresAlarm', this.ingestionFailures.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), '[CRITICAL] streamed feature records could not be written after all retries');
    add(
      'IteratorAgeAlarm',
      this.speedLayer.metric('IteratorAge', { period: Duration.minutes(5), statistic: 'Maximum' }),
      '[WARNING] the speed layer is more than 5 minutes behind the stream',
      Duration.minutes(5).toMilliseconds(),
    );
  }
}

/** Read-only access to the landing bucket's chunk files: list the bucket, get objects, decrypt. */
function grantReadChunks(bucket: s3.IBucket, grantee: iam.IGrantable): void {
  iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [bucket.bucketArn] });
  iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [bucket.arnForObjects('*')] });
  bucket.encryptionKey?.grant(grantee, 'kms:Decrypt');
}
