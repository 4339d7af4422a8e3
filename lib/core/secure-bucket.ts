import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { assertRequiredProps, keeps, resolveRemovalPolicy } from './private/props';

export interface SecureBucketProps {
  /** Customer-managed key that encrypts every object. */
  readonly encryptionKey: kms.IKey;
  /**
   * Bucket that receives this bucket's S3 server access logs, under `accessLogsPrefix`.
   * @default - the stack's shared access-log bucket (`AccessLogsBucket.of(stack)`), created with the
   * first SecureBucket of the stack that needs it
   */
  readonly serverAccessLogsBucket?: s3.IBucket;
  /**
   * Prefix of this bucket's access logs in the log bucket.
   * @default - the construct path, so that several buckets can share one log bucket
   */
  readonly accessLogsPrefix?: string;
  /**
   * What happens to the bucket and its objects when it leaves the stack. S3 deletes only an empty bucket.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the bucket and its objects when it leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
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
 *
 * It is an `s3.IBucket` itself (every member is the underlying `bucket`'s), so it can be passed wherever a
 * bucket is taken: `dataBucket: secure` and `dataBucket: secure.bucket` mean the same.
 */
export class SecureBucket extends Construct implements s3.IBucket {
  public readonly bucket: s3.Bucket;
  /** The stack's shared access-log bucket, when this bucket logs to it (no `serverAccessLogsBucket` was given). */
  public readonly accessLogsBucket?: s3.Bucket;

  constructor(scope: Construct, id: string, props: SecureBucketProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'SecureBucket', props, { encryptionKey: 'object' });
    const removalPolicy = resolveRemovalPolicy(`${this.node.path} (SecureBucket)`, props);
    const retain = keeps(removalPolicy);

    let logsBucket = props.serverAccessLogsBucket;
    if (!logsBucket) {
      this.accessLogsBucket = AccessLogsBucket.of(this, { removalPolicy }).bucket;
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

  // s3.IBucket, answered by the underlying bucket.
  public get bucketArn(): s3.IBucket['bucketArn'] {
    return this.bucket.bucketArn;
  }
  public get bucketName(): s3.IBucket['bucketName'] {
    return this.bucket.bucketName;
  }
  public get bucketWebsiteUrl(): s3.IBucket['bucketWebsiteUrl'] {
    return this.bucket.bucketWebsiteUrl;
  }
  public get bucketWebsiteDomainName(): s3.IBucket['bucketWebsiteDomainName'] {
    return this.bucket.bucketWebsiteDomainName;
  }
  public get bucketDomainName(): s3.IBucket['bucketDomainName'] {
    return this.bucket.bucketDomainName;
  }
  public get bucketDualStackDomainName(): s3.IBucket['bucketDualStackDomainName'] {
    return this.bucket.bucketDualStackDomainName;
  }
  public get bucketRegionalDomainName(): s3.IBucket['bucketRegionalDomainName'] {
    return this.bucket.bucketRegionalDomainName;
  }
  public get bucketRef(): s3.IBucket['bucketRef'] {
    return this.bucket.bucketRef;
  }
  public get stack(): s3.IBucket['stack'] {
    return this.bucket.stack;
  }
  public get env(): s3.IBucket['env'] {
    return this.bucket.env;
  }
  public get isWebsite(): s3.IBucket['isWebsite'] {
    return this.bucket.isWebsite;
  }
  public get encryptionKey(): s3.IBucket['encryptionKey'] {
    return this.bucket.encryptionKey;
  }
  public get replicationRoleArn(): s3.IBucket['replicationRoleArn'] {
    return this.bucket.replicationRoleArn;
  }
  public get policy(): s3.IBucket['policy'] {
    return this.bucket.policy;
  }
  public set policy(policy: s3.IBucket['policy']) {
    this.bucket.policy = policy;
  }
  public addToResourcePolicy(...args: Parameters<s3.IBucket['addToResourcePolicy']>): ReturnType<s3.IBucket['addToResourcePolicy']> {
    return this.bucket.addToResourcePolicy(...args);
  }
  public urlForObject(...args: Parameters<s3.IBucket['urlForObject']>): ReturnType<s3.IBucket['urlForObject']> {
    return this.bucket.urlForObject(...args);
  }
  public transferAccelerationUrlForObject(...args: Parameters<s3.IBucket['transferAccelerationUrlForObject']>): ReturnType<s3.IBucket['transferAccelerationUrlForObject']> {
    return this.bucket.transferAccelerationUrlForObject(...args);
  }
  public virtualHostedUrlForObject(...args: Parameters<s3.IBucket['virtualHostedUrlForObject']>): ReturnType<s3.IBucket['virtualHostedUrlForObject']> {
    return this.bucket.virtualHostedUrlForObject(...args);
  }
  public s3UrlForObject(...args: Parameters<s3.IBucket['s3UrlForObject']>): ReturnType<s3.IBucket['s3UrlForObject']> {
    return this.bucket.s3UrlForObject(...args);
  }
  public arnForObjects(...args: Parameters<s3.IBucket['arnForObjects']>): ReturnType<s3.IBucket['arnForObjects']> {
    return this.bucket.arnForObjects(...args);
  }
  public grantRead(...args: Parameters<s3.IBucket['grantRead']>): ReturnType<s3.IBucket['grantRead']> {
    return this.bucket.grantRead(...args);
  }
  public grantWrite(...args: Parameters<s3.IBucket['grantWrite']>): ReturnType<s3.IBucket['grantWrite']> {
    return this.bucket.grantWrite(...args);
  }
  public grantPut(...args: Parameters<s3.IBucket['grantPut']>): ReturnType<s3.IBucket['grantPut']> {
    return this.bucket.grantPut(...args);
  }
  public grantPutAcl(...args: Parameters<s3.IBucket['grantPutAcl']>): ReturnType<s3.IBucket['grantPutAcl']> {
    return this.bucket.grantPutAcl(...args);
  }
  public grantDelete(...args: Parameters<s3.IBucket['grantDelete']>): ReturnType<s3.IBucket['grantDelete']> {
    return this.bucket.grantDelete(...args);
  }
  public grantReadWrite(...args: Parameters<s3.IBucket['grantReadWrite']>): ReturnType<s3.IBucket['grantReadWrite']> {
    return this.bucket.grantReadWrite(...args);
  }
  public grantReplicationPermission(...args: Parameters<s3.IBucket['grantReplicationPermission']>): ReturnType<s3.IBucket['grantReplicationPermission']> {
    return this.bucket.grantReplicationPermission(...args);
  }
  public grantPublicAccess(...args: Parameters<s3.IBucket['grantPublicAccess']>): ReturnType<s3.IBucket['grantPublicAccess']> {
    return this.bucket.grantPublicAccess(...args);
  }
  public onCloudTrailEvent(...args: Parameters<s3.IBucket['onCloudTrailEvent']>): ReturnType<s3.IBucket['onCloudTrailEvent']> {
    return this.bucket.onCloudTrailEvent(...args);
  }
  public onCloudTrailPutObject(...args: Parameters<s3.IBucket['onCloudTrailPutObject']>): ReturnType<s3.IBucket['onCloudTrailPutObject']> {
    return this.bucket.onCloudTrailPutObject(...args);
  }
  public onCloudTrailWriteObject(...args: Parameters<s3.IBucket['onCloudTrailWriteObject']>): ReturnType<s3.IBucket['onCloudTrailWriteObject']> {
    return this.bucket.onCloudTrailWriteObject(...args);
  }
  public addEventNotification(...args: Parameters<s3.IBucket['addEventNotification']>): ReturnType<s3.IBucket['addEventNotification']> {
    return this.bucket.addEventNotification(...args);
  }
  public addObjectCreatedNotification(...args: Parameters<s3.IBucket['addObjectCreatedNotification']>): ReturnType<s3.IBucket['addObjectCreatedNotification']> {
    return this.bucket.addObjectCreatedNotification(...args);
  }
  public addObjectRemovedNotification(...args: Parameters<s3.IBucket['addObjectRemovedNotification']>): ReturnType<s3.IBucket['addObjectRemovedNotification']> {
    return this.bucket.addObjectRemovedNotification(...args);
  }
  public enableEventBridgeNotification(...args: Parameters<s3.IBucket['enableEventBridgeNotification']>): ReturnType<s3.IBucket['enableEventBridgeNotification']> {
    return this.bucket.enableEventBridgeNotification(...args);
  }
  public addReplicationPolicy(...args: Parameters<s3.IBucket['addReplicationPolicy']>): ReturnType<s3.IBucket['addReplicationPolicy']> {
    return this.bucket.addReplicationPolicy(...args);
  }
  public applyRemovalPolicy(...args: Parameters<s3.IBucket['applyRemovalPolicy']>): ReturnType<s3.IBucket['applyRemovalPolicy']> {
    return this.bucket.applyRemovalPolicy(...args);
  }
}

/** Construct id of the stack's shared access-log bucket. */
const SHARED_ACCESS_LOGS_ID = 'SharedAccessLogs';

export interface AccessLogsBucketProps {
  /**
   * What happens to the logs when the bucket leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the logs when the bucket leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
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
  /**
   * The stack's shared access-log bucket, which SecureBuckets log to unless given another: created on
   * first use at the stack's root. Each bucket logs under its own prefix (its construct path). The bucket
   * is retained as soon as one bucket that logs to it asks for retention, and its `expiration` is the
   * default (365 days); create an AccessLogsBucket of your own to choose another.
   */
  public static of(scope: Construct, options: { readonly removalPolicy?: RemovalPolicy } = {}): AccessLogsBucket {
    const stack = Stack.of(scope);
    const existing = stack.node.tryFindChild(SHARED_ACCESS_LOGS_ID);
    const removalPolicy = options.removalPolicy ?? RemovalPolicy.RETAIN;
    if (existing === undefined) return new AccessLogsBucket(stack, SHARED_ACCESS_LOGS_ID, { removalPolicy: keeps(removalPolicy) ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY });
    if (!(existing instanceof AccessLogsBucket)) {
      throw new Error(`${stack.node.path}: the id '${SHARED_ACCESS_LOGS_ID}' is taken by ${existing.node.path}, which is not an AccessLogsBucket; SecureBucket uses it for the stack's shared access-log bucket`);
    }
    // Logs of a retained bucket are kept as long as the bucket: never let them go with the stack.
    if (keeps(removalPolicy)) existing.bucket.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return existing;
  }

  public readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: AccessLogsBucketProps = {}) {
    super(scope, id);
    const removalPolicy = resolveRemovalPolicy(`${this.node.path} (AccessLogsBucket)`, props);
    this.bucket = new s3.Bucket(this, 'Resource', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      removalPolicy,
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
