import { Annotations, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { DataKey } from '../core/data-key';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';
import { parseEcrImageUri, SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import { SecureBucket } from '../core/secure-bucket';

// The client side of federated learning (seed pattern 12): what a data silo deploys in its own account and
// region so that a coordinator can run training rounds on its data without ever reading it.
//
//   access role     assumed by the coordinator's round function (its account, and only a role tagged with
//                   the federation's name): starts, reads and stops this silo's `fl-*` training jobs, passes
//                   the training role to SageMaker, writes the global model under `global/` and reads the
//                   model updates under `updates/` of the exchange bucket. An explicit deny keeps it off the
//                   raw data whatever else is granted.
//   training role   what SageMaker runs the job as: reads the raw data and the global model, writes the update.
//   exchange bucket KMS-encrypted with the silo's key; its policy lets the access role read updates and write
//                   the global model only. Nothing of the raw data is ever in it.
//   settings        an SSM parameter `/<access role name>/exchange` with the bucket, key, training role and data
//                   URI, which the coordinator reads after assuming the role (so only the role name is fixed).

/** The tag that the coordinator's round function carries, and that the access role's trust policy requires. */
export const FEDERATION_TAG = 'ml-federation';
/** Prefix of the training jobs the coordinator starts (`fl-<hash>-r<round>-<client>`). */
export const FEDERATED_JOB_PREFIX = 'fl-';

/** Every S3 action that reads, lists, copies out, changes or exposes a bucket's objects: what the coordinator is denied on the raw data. */
const RAW_DATA_ACTIONS = ['s3:Get*', 's3:List*', 's3:Put*', 's3:Delete*', 's3:Restore*', 's3:Replicate*', 's3:Abort*', 's3:Create*', 's3:Update*', 's3:Bypass*'];
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const ACCOUNT = /^\d{12}$/;
const KEY_PREFIX = /^([A-Za-z0-9!_.*'()-]+\/)*$/;

export interface FederatedClientData {
  /** The bucket of the silo's raw data; the coordinator is denied any access to it. */
  readonly bucket: s3.IBucket;
  /** The key prefix (ending in `/`, or empty for the whole bucket) of the training data. */
  readonly prefix: string;
  /** The key the data is encrypted with, when it is not the bucket's own `encryptionKey`. */
  readonly encryptionKey?: kms.IKey;
}

export interface FederatedClientProps {
  /** The federation's name: the value of the `ml-federation` tag the coordinator's role must carry. */
  readonly federationName: string;
  /** The account of the coordinator (the platform account), the only one that may assume the access role. */
  readonly coordinatorAccount: string;
  /**
   * The physical name of the access role. The coordinator builds the role's ARN from it and this silo's
   * account, so it is the same in every silo of a federation.
   */
  readonly accessRoleName: string;
  /** Where the silo's training data lies. */
  readonly data: FederatedClientData;
  /** The training image the coordinator's jobs run (an ECR image is granted to the training role). */
  readonly trainingImage: string;
  /**
   * Encrypts the exchange bucket, the jobs' volumes and their output.
   * @default - a new customer-managed key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Where the exchange bucket's server access logs go.
   * @default - a log bucket of this stack
   */
  readonly accessLogsBucket?: s3.IBucket;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long the global models and updates stay in the exchange bucket.
   * @default Duration.days(90)
   */
  readonly exchangeExpiration?: Duration;
}

/**
 * One client silo of a federation: an access role the coordinator may assume (scoped to this silo's
 * training jobs and the exchange bucket's `global/` and `updates/` prefixes), the training role the jobs run as,
 * a KMS-encrypted exchange bucket for global models and updates, and the settings parameter the coordinator
 * reads. The raw data never leaves the silo: the jobs read it in place, and the coordinator is denied it.
 */
export class FederatedClient extends Construct {
  public readonly accessRole: iam.Role;
  public readonly trainingRole: SageMakerExecutionRole;
  public readonly exchangeBucket: s3.IBucket;
  public readonly encryptionKey: kms.IKey;
  public readonly settings: ssm.StringParameter;
  /** `s3://bucket/prefix/` of the training data. */
  public readonly dataUri: string;

  constructor(scope: Construct, id: string, props: FederatedClientProps) {
    super(scope, id);
    const problems = checkPropType(props, 'props', 'object');
    if (problems.length === 0) {
      problems.push(
        ...checkPropType(props.data, 'data', 'object'),
        ...checkPropType(props.trainingImage, 'trainingImage', 'string'),
        ...checkPropType(props.encryptionKey, 'encryptionKey', 'object', { optional: true }),
        ...checkPropType(props.accessLogsBucket, 'accessLogsBucket', 'object', { optional: true }),
      );
      const text = (name: 'federationName' | 'coordinatorAccount' | 'accessRoleName', pattern: RegExp, what: string): void => {
        const value: unknown = props[name];
        const type = checkPropType(value, name, 'string');
        if (type.length > 0) problems.push(...type);
        else if (!Token.isUnresolved(value) && !pattern.test(value as string)) problems.push(`${name}: must be ${what}; got ${JSON.stringify(value)}`);
      };
      text('federationName', NAME, '1-32 lowercase letters, digits or hyphens, starting with a letter');
      text('coordinatorAccount', ACCOUNT, 'a 12-digit account id');
      text('accessRoleName', ROLE_NAME, 'an IAM role name (1-64 letters, digits and +=,.@_-)');
      if (typeof props.data === 'object' && props.data !== null) {
        problems.push(...checkPropType(props.data.bucket, 'data.bucket', 'object'));
        const prefix = checkPropType(props.data.prefix, 'data.prefix', 'string');
        if (prefix.length > 0) problems.push(...prefix);
        else if (!KEY_PREFIX.test(props.data.prefix)) problems.push(`data.prefix: must be empty or a key prefix ending in '/'; got ${JSON.stringify(props.data.prefix)}`);
      }
      const hours = props.exchangeExpiration?.toHours({ integral: false });
      if (hours !== undefined && (hours < 24 || !Number.isInteger(hours / 24))) problems.push(`exchangeExpiration: must be a whole number of days ≥ 1; got ${props.exchangeExpiration!.toHumanString()}`);
    }
    if (problems.length > 0) throw invalidProps(`${this.node.path} (FederatedClient)`, problems);

    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.encryptionKey = props.encryptionKey ?? new DataKey(this, 'Key', { description: `Federated learning exchange of ${props.federationName}`, removalPolicy });
    const exchange = new SecureBucket(this, 'Exchange', { encryptionKey: this.encryptionKey, serverAccessLogsBucket: props.accessLogsBucket, removalPolicy });
    exchange.bucket.addLifecycleRule({ id: 'expire-exchange', expiration: props.exchangeExpiration ?? Duration.days(90) });
    this.exchangeBucket = exchange.bucket;
    this.dataUri = `s3://${props.data.bucket.bucketName}/${props.data.prefix}`;

    // --- The role SageMaker runs the silo's jobs as ----------------------------------------------------
    this.trainingRole = new SageMakerExecutionRole(this, 'TrainingRole', { description: `Training jobs of federation ${props.federationName}: reads this silo's data and the global model, writes the update` });
    const trainingPolicy = this.trainingRole.role.grantsPolicy;
    const data = props.data.bucket.arnForObjects(`${props.data.prefix}*`);
    const globalModels = exchange.bucket.arnForObjects('global/*');
    const updates = exchange.bucket.arnForObjects('updates/*');
    iam.Grant.addToPrincipal({
      grantee: this.trainingRole,
      actions: ['s3:ListBucket'],
      resourceArns: [props.data.bucket.bucketArn, exchange.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${props.data.prefix}*`, 'global/*'] } },
    });
    iam.Grant.addToPrincipal({ grantee: this.trainingRole, actions: ['s3:GetObject'], resourceArns: [data, globalModels] });
    iam.Grant.addToPrincipal({ grantee: this.trainingRole, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: [updates] });
    this.encryptionKey.grant(this.trainingRole, 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt');
    // The jobs' volumes are encrypted with the key: SageMaker creates a grant for them.
    iam.Grant.addToPrincipal({ grantee: this.trainingRole, actions: ['kms:CreateGrant'], resourceArns: [this.encryptionKey.keyArn], conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } } });
    for (const key of new Set([props.data.encryptionKey, props.data.bucket.encryptionKey].filter((k): k is kms.IKey => k !== undefined && k !== this.encryptionKey))) {
      key.grantDecrypt(this.trainingRole);
    }
    if (parseEcrImageUri(props.trainingImage) !== undefined) this.trainingRole.grantPullImage(props.trainingImage);
    acknowledgeWildcardResource(trainingPolicy, data, `Training jobs read the silo's data under ${props.data.prefix || '(the whole bucket)'}; read-only, and it never leaves the silo.`);
    acknowledgeWildcardResource(trainingPolicy, globalModels, 'Training jobs read the global model of their round, under global/<run>/round-<n>/, named at run time.');
    acknowledgeWildcardResource(trainingPolicy, updates, 'Training jobs write their model update under updates/<run>/round-<n>/<job>/, named at run time.');

    // --- The role the coordinator assumes --------------------------------------------------------------
    this.accessRole = new iam.Role(this, 'AccessRole', {
      roleName: props.accessRoleName,
      description: `Assumed by the coordinator of federation ${props.federationName} to run training rounds in this silo`,
      maxSessionDuration: Duration.hours(1),
      // The coordinator's account, and in it only a role that carries the federation's tag: the round function.
      assumedBy: new iam.AccountPrincipal(props.coordinatorAccount).withConditions({ StringEquals: { [`aws:PrincipalTag/${FEDERATION_TAG}`]: props.federationName } }),
    });
    const access = new iam.ManagedPolicy(this, 'AccessPolicy', { description: `Grants of the coordinator of federation ${props.federationName} in this silo`, roles: [this.accessRole] });
    const jobs = `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:training-job/${FEDERATED_JOB_PREFIX}*`;
    access.addStatements(
      new iam.PolicyStatement({
        sid: 'StartFederatedTrainingJobs',
        actions: ['sagemaker:CreateTrainingJob'],
        resources: [jobs],
        conditions: {
          StringEquals: { [`aws:RequestTag/${FEDERATION_TAG}`]: props.federationName, 'sagemaker:VolumeKmsKey': this.encryptionKey.keyArn, 'sagemaker:OutputKmsKey': this.encryptionKey.keyArn },
          Bool: { 'sagemaker:NetworkIsolation': 'true', 'sagemaker:InterContainerTrafficEncryption': 'true' },
        },
      }),
      new iam.PolicyStatement({ sid: 'TagFederatedTrainingJobs', actions: ['sagemaker:AddTags'], resources: [jobs], conditions: { StringEquals: { [`aws:RequestTag/${FEDERATION_TAG}`]: props.federationName } } }),
      new iam.PolicyStatement({ sid: 'ReadAndStopFederatedTrainingJobs', actions: ['sagemaker:DescribeTrainingJob', 'sagemaker:StopTrainingJob'], resources: [jobs] }),
      new iam.PolicyStatement({
        sid: 'PassTheTrainingRole',
        actions: ['iam:PassRole'],
        resources: [this.trainingRole.role.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
      }),
      new iam.PolicyStatement({ sid: 'WriteGlobalModels', actions: ['s3:PutObject'], resources: [globalModels] }),
      new iam.PolicyStatement({ sid: 'ReadModelUpdates', actions: ['s3:GetObject'], resources: [updates] }),
      new iam.PolicyStatement({
        sid: 'UseTheExchangeKeyThroughS3',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [this.encryptionKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    );
    // Belt and braces: whatever another policy grants, the coordinator's role never reads the raw data.
    access.addStatements(new iam.PolicyStatement({ sid: 'NeverTheRawData', effect: iam.Effect.DENY, actions: RAW_DATA_ACTIONS, resources: [props.data.bucket.bucketArn, props.data.bucket.arnForObjects('*')] }));
    acknowledgeWildcardResource(access, jobs, `The coordinator names each round's training jobs at run time (${FEDERATED_JOB_PREFIX}<hash>-r<round>-<client>); creation requires the federation's tag and this silo's key, with network isolation.`);
    acknowledgeWildcardResource(access, globalModels, 'Writes the global model of each round under global/<run>/round-<n>/, named at run time; no read.');
    acknowledgeWildcardResource(access, updates, 'Reads the model updates the jobs write under updates/<run>/round-<n>/, named at run time; no write.');

    // The exchange bucket's own policy: the access role reads updates and writes global models, nothing else.
    exchange.bucket.addToResourcePolicy(
      new iam.PolicyStatement({ sid: 'CoordinatorReadsOnlyUpdates', effect: iam.Effect.DENY, principals: [new iam.ArnPrincipal(this.accessRole.roleArn)], actions: ['s3:GetObject', 's3:GetObjectVersion'], notResources: [updates] }),
    );
    exchange.bucket.addToResourcePolicy(
      new iam.PolicyStatement({ sid: 'CoordinatorWritesOnlyGlobalModels', effect: iam.Effect.DENY, principals: [new iam.ArnPrincipal(this.accessRole.roleArn)], actions: ['s3:PutObject'], notResources: [globalModels] }),
    );
    // The data bucket's policy, when this stack owns it: nothing of the coordinator's account reads it.
    const denyCoordinator = new iam.PolicyStatement({
      sid: 'NoAccessFromTheFederationCoordinator',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['s3:*'],
      resources: [props.data.bucket.bucketArn, props.data.bucket.arnForObjects('*')],
      conditions: { StringEquals: { 'aws:PrincipalAccount': props.coordinatorAccount } },
    });
    if (!props.data.bucket.addToResourcePolicy(denyCoordinator).statementAdded) {
      // The statement as an operator pastes it into the bucket's policy (in the aws partition).
      const arn = `arn:aws:s3:::${props.data.bucket.bucketName}`;
      const statement = { ...denyCoordinator.toStatementJson(), Resource: [arn, `${arn}/*`] };
      Annotations.of(this).addInfo(
        `The data bucket is imported, so its policy is not managed here; the access role is denied it by its own policy. To deny the coordinator's account in the bucket policy as well, add: ${JSON.stringify(stack.resolve(statement))}`,
      );
    }

    this.settings = new ssm.StringParameter(this, 'Settings', {
      parameterName: `/${props.accessRoleName}/exchange`,
      description: `Where the coordinator of federation ${props.federationName} exchanges models with this silo`,
      stringValue: stack.toJsonString({ exchangeBucket: exchange.bucket.bucketName, keyArn: this.encryptionKey.keyArn, trainingRoleArn: this.trainingRole.role.roleArn, dataUri: this.dataUri }),
    });
    access.addStatements(new iam.PolicyStatement({ sid: 'ReadTheSettings', actions: ['ssm:GetParameter'], resources: [this.settings.parameterArn] }));
  }
}
