import { Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { assertRequiredProps, keeps, resolveRemovalPolicy } from '../core/private/props';
import { SecureBucket } from '../core/secure-bucket';

export interface OfflineFeatureQueriesProps {
  /** Key that encrypts the query results. */
  readonly encryptionKey: kms.IKey;
  /**
   * Access-log bucket of the results bucket.
   * @default - the stack's shared access-log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * What happens to the results bucket and the workgroup when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the results bucket when it leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
   * @default true
   */
  readonly retain?: boolean;
  /**
   * Most data one query may scan, in bytes: a guard against a runaway point-in-time join.
   * @default 1 TiB
   */
  readonly bytesScannedCutoffPerQuery?: number;
}

/**
 * An Athena workgroup for point-in-time queries over the offline store: results encrypted with the
 * key (enforced, so no client can turn it off), CloudWatch metrics on, and a scan limit per query.
 * The README's as-of join builds a training set without leakage.
 */
export class OfflineFeatureQueries extends Construct {
  public readonly workgroup: athena.CfnWorkGroup;
  public readonly resultsBucket: s3.Bucket;
  public readonly workgroupName: string;

  constructor(scope: Construct, id: string, props: OfflineFeatureQueriesProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'OfflineFeatureQueries', props, { encryptionKey: 'object' });
    const removalPolicy = resolveRemovalPolicy(`${this.node.path} (OfflineFeatureQueries)`, props);
    this.resultsBucket = new SecureBucket(this, 'Results', {
      encryptionKey: props.encryptionKey,
      serverAccessLogsBucket: props.accessLogsBucket,
      removalPolicy,
    }).bucket;
    // Athena requires a workgroup name; it is generated from the construct path, never fixed.
    this.workgroupName = Names.uniqueResourceName(this, { maxLength: 128 });
    this.workgroup = new athena.CfnWorkGroup(this, 'Resource', {
      name: this.workgroupName,
      description: 'Point-in-time queries over the Feature Store offline store',
      state: 'ENABLED',
      recursiveDeleteOption: !keeps(removalPolicy),
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery ?? 1024 ** 4,
        resultConfiguration: {
          outputLocation: this.resultsBucket.s3UrlForObject('results/'),
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: props.encryptionKey.keyArn },
        },
      },
    });
    this.workgroup.applyRemovalPolicy(keeps(removalPolicy) ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY);
  }

  /** Lets the grantee run queries in this workgroup and read their results. */
  public grantQuery(grantee: iam.IGrantable): iam.Grant {
    const arn = Stack.of(this).formatArn({ service: 'athena', resource: 'workgroup', resourceName: this.workgroupName });
    this.resultsBucket.grantReadWrite(grantee, 'results/*');
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution', 'athena:GetWorkGroup'],
      resourceArns: [arn],
    });
  }
}
