import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { assertRequiredProps, keeps, resolveRemovalPolicy } from '../core/private/props';

/** Per-model state the experiment workflows keep in the log: the latest A/B decision and the current champion. */
export type WorkflowStateKind = 'analysis' | 'champion';

export interface PredictionLogProps {
  /** Customer-managed key that encrypts the table. */
  readonly encryptionKey: kms.IKey;
  /**
   * What happens to the table when it leaves the stack; any policy but DESTROY also turns on deletion protection.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the table (and protect it from deletion) when it leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
   * @default true
   */
  readonly retain?: boolean;
}

/**
 * The durable record of experiments: every prediction served with the variant and model version
 * that served it (and, for sticky A/B tests, a hash of the caller), and the business outcome
 * recorded against it later.
 *
 * DynamoDB rather than Firehose to S3: recording an outcome must check, atomically, that the
 * prediction exists, belongs to the model and has no conflicting outcome yet, and answer the caller
 * at once; Firehose is write-only and would accept outcomes for unknown predictions. Items expire
 * through TTL (`expiresAt`); point-in-time recovery covers the last 35 days.
 *
 * Keys: `predictionId`; index `byModel` (`model`, `servedAt`) for per-experiment analysis.
 * Workflows keep per-model state under reserved ids (`analysis#<model>`, `champion#<model>`).
 */
export class PredictionLog extends Construct {
  public static readonly MODEL_INDEX = 'byModel';
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: PredictionLogProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'PredictionLog', props, { encryptionKey: 'object' });
    const removalPolicy = resolveRemovalPolicy(`${this.node.path} (PredictionLog)`, props);
    const retain = keeps(removalPolicy);
    this.table = new dynamodb.Table(this, 'Resource', {
      partitionKey: { name: 'predictionId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: 'expiresAt',
      deletionProtection: retain,
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: PredictionLog.MODEL_INDEX,
      partitionKey: { name: 'model', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'servedAt', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    const reason =
      'Point-in-time recovery gives continuous backups with 35 days of restore points, and prod retains the table with deletion protection; an AWS Backup plan would duplicate that for a table whose items expire by TTL.';
    Validations.of(this.table).acknowledge(
      { id: 'HIPAA.Security-DynamoDBInBackupPlan', reason },
      { id: 'NIST.800.53.R5-DynamoDBInBackupPlan', reason },
    );
    const capacityReason = 'On-demand (PAY_PER_REQUEST) capacity scales with traffic; provisioned-capacity autoscaling does not apply.';
    Validations.of(this.table).acknowledge(
      { id: 'HIPAA.Security-DynamoDBAutoscalingEnabled', reason: capacityReason },
      { id: 'NIST.800.53.R5-DynamoDBAutoscalingEnabled', reason: capacityReason },
    );
  }

  /** DynamoDB uses the table's key on the caller's behalf: every reader and writer needs these actions on it. */
  private grantKey(grantee: iam.IGrantable, ...actions: string[]): void {
    this.table.encryptionKey?.grant(grantee, ...actions);
  }

  /** Lets the grantee write new prediction records (the inference function). */
  public grantLogPredictions(grantee: iam.IGrantable): iam.Grant {
    this.grantKey(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:PutItem'], resourceArns: [this.table.tableArn] });
  }

  /** Lets the grantee record outcomes: a conditional update of existing predictions. */
  public grantRecordOutcomes(grantee: iam.IGrantable): iam.Grant {
    this.grantKey(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:UpdateItem'], resourceArns: [this.table.tableArn] });
  }

  /** Lets the grantee read one model's predictions and outcomes through the `byModel` index. */
  public grantQueryByModel(grantee: iam.IGrantable): iam.Grant {
    this.grantKey(grantee, 'kms:Decrypt', 'kms:DescribeKey');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:Query'],
      resourceArns: [`${this.table.tableArn}/index/${PredictionLog.MODEL_INDEX}`],
    });
  }

  /**
   * A workflow task that writes the state item `<kind>#<modelName>` with string attributes taken from
   * JSONPaths of the execution state. Grant the workflow `grantWorkflowState`.
   */
  public putWorkflowStateTask(scope: Construct, id: string, kind: WorkflowStateKind, modelName: string, attributePaths: Record<string, string>): tasks.CallAwsService {
    return tasks.CallAwsService.jsonPath(scope, id, {
      service: 'dynamodb',
      action: 'putItem',
      iamResources: [this.table.tableArn],
      iamAction: 'dynamodb:PutItem',
      parameters: {
        TableName: this.table.tableName,
        Item: {
          predictionId: { S: `${kind}#${modelName}` },
          ...Object.fromEntries(Object.entries(attributePaths).map(([name, path]) => [name, { 'S.$': path }])),
        },
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
  }

  /** A workflow task that reads the state item `<kind>#<modelName>` into `resultPath` (no `Item` when there is none). */
  public getWorkflowStateTask(scope: Construct, id: string, kind: WorkflowStateKind, modelName: string, resultPath: string): tasks.CallAwsService {
    return tasks.CallAwsService.jsonPath(scope, id, {
      service: 'dynamodb',
      action: 'getItem',
      iamResources: [this.table.tableArn],
      iamAction: 'dynamodb:GetItem',
      parameters: { TableName: this.table.tableName, Key: { predictionId: { S: `${kind}#${modelName}` } } },
      resultPath,
    });
  }

  /**
   * Lets the grantee read and write one model's online-allocation items: its bandit's state (`bandit#<model>`) and
   * its decisions (`bandit#<model>#<time>`).
   */
  public grantBanditState(grantee: iam.IGrantable, modelName: string): iam.Grant {
    this.grantKey(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`bandit#${modelName}`, `bandit#${modelName}#*`] } },
    });
  }

  /** Lets the grantee read and write the per-model workflow state items (`analysis#…`, `champion#…`). */
  public grantWorkflowState(grantee: iam.IGrantable): iam.Grant {
    this.grantKey(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['analysis#*', 'champion#*'] } },
    });
  }
}
