import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { assertRequiredProps } from '../core/private/props';

export interface PredictionCacheTableProps {
  /** Encrypts the cached answers (customer-managed key). */
  readonly encryptionKey: kms.IKey;
  /**
   * What happens to the table when it leaves the stack. It holds copies of answers that expire within a
   * day, so it is not kept by default.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The shared tier of the prediction cache (seed pattern 18): one DynamoDB item per cache key
 * (lambda/invoke/cache-store.ts), encrypted with a customer-managed key, on demand, expired by its `ttl`
 * attribute. No point-in-time recovery and no backup: everything in it is a copy the model can make again.
 */
export class PredictionCacheTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: PredictionCacheTableProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'PredictionCacheTable', props, { encryptionKey: 'object' });
    this.table = new dynamodb.Table(this, 'Resource', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      timeToLiveAttribute: 'ttl',
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    const copies = 'The table is a cache: every item is a copy of a model answer that expires within a day and that the model answers again on a miss, so there is nothing to recover or back up.';
    Validations.of(this.table).acknowledge(
      { id: 'AwsSolutions-DDB3', reason: copies },
      { id: 'HIPAA.Security-DynamoDBPITREnabled', reason: copies },
      { id: 'NIST.800.53.R5-DynamoDBPITREnabled', reason: copies },
      { id: 'HIPAA.Security-DynamoDBInBackupPlan', reason: copies },
      { id: 'NIST.800.53.R5-DynamoDBInBackupPlan', reason: copies },
    );
    const capacity = 'On-demand (PAY_PER_REQUEST) capacity scales with traffic; provisioned-capacity autoscaling does not apply.';
    Validations.of(this.table).acknowledge(
      { id: 'HIPAA.Security-DynamoDBAutoscalingEnabled', reason: capacity },
      { id: 'NIST.800.53.R5-DynamoDBAutoscalingEnabled', reason: capacity },
    );
  }

  /** Lets the grantee read and write cache items (GetItem, PutItem) and use the key for them. */
  public grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    this.table.encryptionKey?.grant(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resourceArns: [this.table.tableArn] });
  }
}
