import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { assertRequiredProps } from '../core/private/props';

export interface InferenceStateTableProps {
  /** Encrypts the cached answers (customer-managed key). */
  readonly encryptionKey: kms.IKey;
  /**
   * What happens to the table when it leaves the stack. It holds copies of answers that expire within a
   * day and breaker states that reset to closed, so it is not kept by default.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The inference API's shared state, one DynamoDB table: the prediction cache's shared tier (seed pattern 18;
 * one item per cache key, lambda/invoke/cache-store.ts, expired by its `ttl` attribute) and the circuit
 * breakers' states (pattern 19; `breaker#<endpoint>` items, lambda/invoke/breaker-store.ts). Encrypted with a
 * customer-managed key, on demand. No point-in-time recovery and no backup: a lost cache entry is a miss
 * and a lost breaker state is a closed breaker.
 */
export class InferenceStateTable extends Construct {
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: InferenceStateTableProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'InferenceStateTable', props, { encryptionKey: 'object' });
    this.table = new dynamodb.Table(this, 'Resource', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: false },
      timeToLiveAttribute: 'ttl',
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    const copies = 'The table holds copies of model answers that expire within a day (a lost one is a miss the model answers again) and circuit-breaker states (a lost one is a closed breaker that reopens on the next failures), so there is nothing to recover or back up.';
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

  /** Lets the grantee read and write items (GetItem, PutItem) and use the key for them. */
  public grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    this.table.encryptionKey?.grant(grantee, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({ grantee, actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resourceArns: [this.table.tableArn] });
  }
}
