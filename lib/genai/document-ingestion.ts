import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventsources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { terminalQueue } from '../core/private/terminal-queue';
import { DataKey } from '../core/data-key';
import { MlFunction } from '../core/ml-function';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { embeddingModelArn, validateEmbeddingModel } from './private/bedrock-models';
import type { VectorKnowledgeBase } from './vector-knowledge-base';
import { assertRequiredProps } from '../core/private/props';

/** Namespace of the ingestion and query metrics of the RAG pattern. */
export const RAG_METRICS_NAMESPACE = 'MlPlatform/Rag';

export interface DocumentIngestionProps {
  readonly knowledgeBase: VectorKnowledgeBase;
  /**
   * Where documents are put. Its CloudFormation resource gets EventBridge notifications switched on; a
   * bucket from elsewhere must have them on already.
   */
  readonly bucket: s3.IBucket;
  /**
   * Key prefix of the documents.
   * @default 'documents/'
   */
  readonly prefix?: string;
  /** Bedrock embedding model: Titan Text Embeddings v1/v2 or Cohere Embed v3 (English or multilingual). */
  readonly embeddingModelId: string;
  /** Characters per chunk, and characters shared by consecutive chunks (below `chunkSize`). */
  readonly chunkSize: number;
  readonly chunkOverlap: number;
  /** Key that encrypts the function's logs. The queues get a key of their own that EventBridge may use. */
  readonly encryptionKey: kms.IKey;
  /**
   * Documents larger than this are rejected (logged and counted).
   * @default 10 MiB
   */
  readonly maxDocumentBytes?: number;
  /**
   * Deliveries of an event before it moves to the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * @default 4
   */
  readonly reservedConcurrency?: number;
  /**
   * Run the function in this VPC (it must reach S3, Bedrock Runtime and the domain from there).
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Of the queues, their key and the logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Notified when events reach the dead-letter queue or documents are rejected.
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/**
 * Ingestion of the RAG knowledge base: documents put in (or removed from) a prefix of a bucket raise S3
 * events that EventBridge queues in SQS (with a dead-letter queue); a TypeScript function parses them
 * (txt, md, html, json), chunks them (sentence-aware, size and overlap from props), embeds the chunks
 * with Bedrock (batched where the model allows) and bulk-indexes them with their source; a changed
 * document replaces its chunks and a removed one loses them.
 */
export class DocumentIngestion extends Construct {
  public readonly handler: lambda.Function;
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly rule: events.Rule;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: DocumentIngestionProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'DocumentIngestion', props, { knowledgeBase: 'construct', bucket: 'object', embeddingModelId: 'string', chunkSize: 'number', chunkOverlap: 'number', encryptionKey: 'object' });
    const prefix = props.prefix ?? 'documents/';
    this.validate(props, prefix);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    // EventBridge can only deliver to a queue encrypted with a key whose policy lets it: a key of the
    // queues' own keeps the platform data key's policy free of the events service.
    const queueKey = new DataKey(this, 'QueueKey', { description: 'RAG document ingestion queues', removalPolicy }).key;
    queueKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowEventBridgeToQueueDocumentEvents',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    const timeout = Duration.minutes(5);
    this.deadLetterQueue = terminalQueue(this, 'DeadLetters', { encryptionKey: queueKey, removalPolicy, holds: 'the dead-letter queue of the document events' });
    this.queue = new sqs.Queue(this, 'Events', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: queueKey,
      enforceSSL: true,
      // Six times the function timeout, as Lambda recommends for an SQS event source.
      visibilityTimeout: timeout.plus(Duration.minutes(25)),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
      removalPolicy,
    });

    const cfnBucket = props.bucket.node.defaultChild;
    if (cfnBucket instanceof s3.CfnBucket) {
      // Set on the resource itself: aws-cdk-lib's Bucket would write it through a custom resource of its own.
      cfnBucket.addPropertyOverride('NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled', true);
    }
    this.rule = new events.Rule(this, 'DocumentEvents', {
      description: `Queues the created and deleted documents under ${prefix} for ingestion`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created', 'Object Deleted'],
        detail: { bucket: { name: [props.bucket.bucketName] }, object: { key: [{ prefix } as never] } },
      },
      targets: [new targets.SqsQueue(this.queue)],
    });

    const kb = props.knowledgeBase;
    const fn = new MlFunction(this, 'Handler', {
      handler: 'ingest-documents',
      description: 'Parses, chunks, embeds and indexes the documents of the RAG knowledge base',
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'the SQS event source mapping, which redelivers failed events and moves them to the dead-letter queue',
      calls: 'S3, Bedrock Runtime and the OpenSearch domain',
      timeout,
      memorySize: 1024,
      reservedConcurrency: props.reservedConcurrency ?? 4,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      vpc: props.vpc,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'document-ingestion',
        POWERTOOLS_METRICS_NAMESPACE: RAG_METRICS_NAMESPACE,
        OPENSEARCH_ENDPOINT: kb.endpoint,
        INDEX_NAME: kb.index.indexName,
        EMBEDDING_MODEL_ID: props.embeddingModelId,
        EMBEDDING_DIMENSION: String(kb.index.dimension),
        CHUNK_SIZE: String(props.chunkSize),
        CHUNK_OVERLAP: String(props.chunkOverlap),
        MAX_DOCUMENT_BYTES: String(props.maxDocumentBytes ?? 10 * 1024 * 1024),
        AWS_MAX_ATTEMPTS: '5',
      },
    });
    this.handler = fn.function;
    this.handler.addEventSource(new eventsources.SqsEventSource(this.queue, { batchSize: 5, reportBatchItemFailures: true, maxBatchingWindow: Duration.seconds(5) }));
    kb.grantWrite(this.handler);
    props.bucket.grantRead(this.handler, `${prefix}*`);
    iam.Grant.addToPrincipal({ grantee: this.handler, actions: ['bedrock:InvokeModel'], resourceArns: [embeddingModelArn(this, props.embeddingModelId)] });
    acknowledgeWildcardResource(fn.role.grantsPolicy, props.bucket.arnForObjects(`${prefix}*`), 'The function reads whichever document an event names; the grant is read-only and limited to the knowledge base prefix.');
    const readReason = "aws-cdk-lib's Bucket.grantRead writes the s3:GetObject*/List* families; they are limited to the knowledge base prefix of one bucket.";
    Validations.of(fn.role.grantsPolicy).acknowledge(
      { id: 'AwsSolutions-IAM5[Action::s3:GetObject*]', reason: readReason },
      { id: 'AwsSolutions-IAM5[Action::s3:GetBucket*]', reason: readReason },
      { id: 'AwsSolutions-IAM5[Action::s3:List*]', reason: readReason },
    );
    if (props.alarmAction) this.createAlarms(props.alarmAction);
  }

  /** Documents indexed (Sum over 5 minutes by default). */
  public metricDocumentsIndexed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('DocumentsIndexed', props);
  }

  /** Documents rejected as malformed, unsupported or too large (Sum over 5 minutes by default). */
  public metricDocumentsRejected(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('DocumentsRejected', props);
  }

  /** Events waiting in the dead-letter queue (Maximum over 5 minutes by default). */
  public metricDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: Duration.minutes(5), ...props });
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: RAG_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: 'document-ingestion' },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  private createAlarms(action: cloudwatch.IAlarmAction): void {
    const deadLetters = this.metricDeadLetters().createAlarm(this, 'DeadLettersAlarm', {
      alarmDescription: 'Document events failed every delivery and wait in the dead-letter queue: redrive them once the cause is fixed.',
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const rejected = this.metricDocumentsRejected().createAlarm(this, 'RejectedDocumentsAlarm', {
      alarmDescription: 'Documents were rejected (malformed, unsupported type or too large); the function logs name each key and reason.',
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const alarm of [deadLetters, rejected]) {
      alarm.addAlarmAction(action);
      this.alarms.push(alarm);
    }
  }

  private validate(props: DocumentIngestionProps, prefix: string): void {
    const fail = (message: string): never => {
      throw new Error(`${this.node.path} (DocumentIngestion): ${message}`);
    };
    if (!Token.isUnresolved(prefix) && (prefix.startsWith('/') || (prefix !== '' && !prefix.endsWith('/')))) fail(`prefix: must end with '/' and not start with one; got '${prefix}'`);
    if (!Number.isInteger(props.chunkSize) || props.chunkSize < 100 || props.chunkSize > 20000) fail(`chunkSize: must be a whole number of characters from 100 to 20000; got ${props.chunkSize}`);
    if (!Number.isInteger(props.chunkOverlap) || props.chunkOverlap < 0 || props.chunkOverlap >= props.chunkSize) {
      fail(`chunkOverlap: must be a whole number from 0 to below chunkSize (${props.chunkSize}); got ${props.chunkOverlap}`);
    }
    const problem = validateEmbeddingModel(props.embeddingModelId, props.knowledgeBase.index.dimension, props.chunkSize);
    if (problem) fail(problem);
  }
}
