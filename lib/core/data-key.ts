import { Duration, RemovalPolicy, Stack, type ResourceEnvironment } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

export interface DataKeyProps {
  /**
   * What the key protects; shown in the KMS console.
   * @default 'cdk-ml-patterns data key'
   */
  readonly description?: string;
  /**
   * What happens to the key when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Waiting period before a removed key is deleted.
   * @default Duration.days(30)
   */
  readonly pendingWindow?: Duration;
}

/**
 * A customer-managed KMS key with yearly rotation, whose key policy lets the AWS services that the
 * patterns use on the platform's behalf (CloudWatch Logs for encrypted log groups, CloudWatch alarms
 * publishing to an encrypted SNS topic) use it in this account and region only.
 *
 * It is a `kms.IKey` itself (every member is the underlying `key`'s), so it can be passed wherever a
 * key is taken: `encryptionKey: dataKey` and `encryptionKey: dataKey.key` mean the same.
 */
export class DataKey extends Construct implements kms.IKey {
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: DataKeyProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = new kms.Key(this, 'Resource', {
      description: props.description ?? 'cdk-ml-patterns data key',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      pendingWindow: props.pendingWindow ?? Duration.days(30),
    });

    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchLogsInThisAccount',
        principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${stack.partition}:logs:${stack.region}:${stack.account}:log-group:*` },
        },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublishToEncryptedTopics',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
  }

  // kms.IKey, answered by the underlying key.
  public get keyArn(): string {
    return this.key.keyArn;
  }
  public get keyId(): string {
    return this.key.keyId;
  }
  public get keyRef(): kms.KeyReference {
    return this.key.keyRef;
  }
  public get stack(): Stack {
    return this.key.stack;
  }
  public get env(): ResourceEnvironment {
    return this.key.env;
  }
  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.key.applyRemovalPolicy(policy);
  }
  public addAlias(alias: string): kms.Alias {
    return this.key.addAlias(alias);
  }
  public addToResourcePolicy(statement: iam.PolicyStatement, allowNoOp?: boolean): iam.AddToResourcePolicyResult {
    return this.key.addToResourcePolicy(statement, allowNoOp);
  }
  public grant(grantee: iam.IGrantable, ...actions: string[]): iam.Grant {
    return this.key.grant(grantee, ...actions);
  }
  public grantDecrypt(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantDecrypt(grantee);
  }
  public grantEncrypt(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantEncrypt(grantee);
  }
  public grantEncryptDecrypt(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantEncryptDecrypt(grantee);
  }
  public grantSign(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantSign(grantee);
  }
  public grantVerify(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantVerify(grantee);
  }
  public grantSignVerify(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantSignVerify(grantee);
  }
  public grantGenerateMac(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantGenerateMac(grantee);
  }
  public grantVerifyMac(grantee: iam.IGrantable): iam.Grant {
    return this.key.grantVerifyMac(grantee);
  }
}
