import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface SecureBucketProps {
  /** Customer-managed key that encrypts every object. */
  readonly encryptionKey: kms.IKey;
  /**
   * Bucket that receives this bucket's S3 server access logs, under `accessLogsPrefix`.
   * @default - a new access-log bucket is created beside this one
   */
  readonly serverAccessLogsBucket?: s3.IBucket;
  /**
   * Prefix of this bucket's access logs in the log bucket.
   * @default - the construct path, so that several buckets can share one log bucket
   */
  readonly accessLogsPrefix?: string;
  /**
   * Retain the bucket and its objects when it leaves the stack (use in production).
   * @default true
   */
  readonly retain?: boolean;
  /**
   * Days after which noncurrent object versions are deleted.
   * @default - noncurrent versions are kept for 90 days when not retained, 365 days when retained
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Send the bucket's object events to EventBridge (for rules such as "train when a dataset lands").
   * @default false
   */
  readonly eventBridgeEnabled?: boolean;
}

/**
 * An S3 bucket that is safe by default: TLS only, public access blocked, encrypted with a
 * customer-managed KMS key (with S3 Bucket Keys to limit KMS calls), versioned, with server access
 * logs, ACLs disabled, and retained unless told otherwise.
 */
export class SecureBucket extends Construct {
  public readonly bucket: s3.Bucket;
  /** The access-log bucket, when this construct created one. */
  public readonly accessLogsBucket?: s3.Bucket;

  constructor(scope: Construct, id: string, props: SecureBucketProps) {
    super(scope, id);
    const retain = props.retain ?? true;
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    let logsBucket = props.serverAccessLogsBucket;
    if (!logsBucket) {
      this.accessLogsBucket = new AccessLogsBucket(this, 'AccessLogs', { retain }).bucket;
      logsBucket = this.accessLogsBucket;
    }

    this.bucket = new s3.Bucket(this, 'Resource', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy,
      lifecycleRules: [
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: props.noncurrentVersionExpiration ?? Duration.days(retain ? 365 : 90),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
    });
    // Access logging is wired by hand rather than with `serverAccessLogsBucket`, whose behaviour
    // depends on a feature flag: without it, S3 would need ACLs on the log bucket. A bucket policy
    // scoped to this bucket's prefix works in every app, whatever its flags.
    const prefix = props.accessLogsPrefix ?? `${this.node.path}/`;
    (this.bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = {
      destinationBucketName: logsBucket.bucketName,
      logFilePrefix: prefix,
    };
    logsBucket.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [logsBucket.arnForObjects(`${prefix}*`)],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    if (props.eventBridgeEnabled) {
      // Set on the bucket itself: the L2 option would add a notifications custom resource (a Lambda function).
      (this.bucket.node.defaultChild as s3.CfnBucket).notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    }
    acknowledgeReplication(this.bucket);
  }
}

export interface AccessLogsBucketProps {
  /**
   * Retain the logs when the bucket leaves the stack.
   * @default true
   */
  readonly retain?: boolean;
  /**
   * How long access logs are kept.
   * @default Duration.days(365)
   */
  readonly expiration?: Duration;
}

/**
 * The target of S3 server access logs. S3 log delivery cannot write to SSE-KMS buckets, so this one
 * alone uses S3-managed encryption; it is otherwise locked down like every other bucket.
 */
export class AccessLogsBucket extends Construct {
  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: AccessLogsBucketProps = {}) {
    super(scope, id);
    const retain = props.retain ?? true;
    this.bucket = new s3.Bucket(this, 'Resource', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: props.expiration ?? Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
    });
    const acknowledge = Validations.of(this.bucket);
    acknowledge.acknowledge(
      { id: 'AwsSolutions-S1', reason: 'This is the server-access-log target; logging it to itself would create an endless delivery loop.' },
      { id: 'HIPAA.Security-S3BucketLoggingEnabled', reason: 'This is the server-access-log target; logging it to itself would create an endless delivery loop.' },
      { id: 'NIST.800.53.R5-S3BucketLoggingEnabled', reason: 'This is the server-access-log target; logging it to itself would create an endless delivery loop.' },
      { id: 'HIPAA.Security-S3DefaultEncryptionKMS', reason: 'S3 server access log delivery only supports SSE-S3 on the target bucket, not SSE-KMS.' },
      { id: 'NIST.800.53.R5-S3DefaultEncryptionKMS', reason: 'S3 server access log delivery only supports SSE-S3 on the target bucket, not SSE-KMS.' },
    );
    acknowledgeReplication(this.bucket);
  }
}

function acknowledgeReplication(bucket: s3.Bucket): void {
  const reason =
    'Cross-region replication needs a bucket in a second region that this single-region blueprint does not own; versioning, noncurrent-version retention and RETAIN in prod protect the data in-region.';
  Validations.of(bucket).acknowledge(
    { id: 'HIPAA.Security-S3BucketReplicationEnabled', reason },
    { id: 'NIST.800.53.R5-S3BucketReplicationEnabled', reason },
  );
}
