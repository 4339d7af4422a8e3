import { OpenSearchPartitionInstanceType } from '../core/private/aws-enums';
import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as opensearch from 'aws-cdk-lib/aws-opensearchservice';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { terminalQueue } from '../core/private/terminal-queue';
import { MlFunction } from '../core/ml-function';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { KnnIndex, type KnnIndexOptions } from './knn-index';
import { assertRequiredProps } from '../core/private/props';

const INSTANCE_TYPES: readonly string[] = Object.values(OpenSearchPartitionInstanceType);

export interface VectorKnowledgeBaseCapacity {
  /**
   * @default 1
   */
  readonly dataNodes?: number;
  /**
   * An OpenSearch Service instance type (`@aws-sdk/client-opensearch`'s OpenSearchPartitionInstanceType).
   * @default 't3.medium.search'
   */
  readonly dataNodeInstanceType?: string;
  /**
   * Dedicated master nodes (3 or 5); recommended in production.
   * @default - none: the data nodes elect a master among themselves
   */
  readonly masterNodes?: number;
  /**
   * @default 'm6g.large.search' when there are dedicated masters
   */
  readonly masterNodeInstanceType?: string;
  /**
   * gp3 EBS volume per data node, in GiB.
   * @default 10
   */
  readonly ebsVolumeSizeGiB?: number;
  /**
   * Availability Zones the data nodes spread over (2 or 3 turns zone awareness on).
   * @default 1
   */
  readonly availabilityZoneCount?: number;
}

export interface VectorKnowledgeBaseProps {
  /** Key that encrypts the domain at rest, its logs and the index manager's logs and dead-letter queue. */
  readonly encryptionKey: kms.IKey;
  /** The k-NN index of the chunks. */
  readonly index: KnnIndexOptions;
  /**
   * @default - one t3.medium.search node, 10 GiB, one zone, no dedicated masters
   */
  readonly capacity?: VectorKnowledgeBaseCapacity;
  /**
   * @default opensearch.EngineVersion.OPENSEARCH_2_19
   */
  readonly engineVersion?: opensearch.EngineVersion;
  /**
   * Put the domain (and the index manager) in this VPC; the functions that use the domain must be in
   * it too (`grantWrite`/`grantRead` open port 443 to them).
   * @default - a public endpoint, guarded by fine-grained access control and SigV4
   */
  readonly vpc?: ec2.IVpc;
  /**
   * @default - the VPC's isolated subnets, one per zone of `availabilityZoneCount`
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Of the domain, its index and its logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Notified when the cluster turns red, blocks index writes, runs short of storage (under a quarter of a
   * node's volume free) or of JVM heap (memory pressure over 85%).
   * @default - no alarms
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/**
 * The vector store of the RAG pattern: an OpenSearch Service domain (encryption at rest with the
 * customer-managed key, node-to-node encryption, HTTPS only with TLS 1.2, fine-grained access control
 * with IAM, slow, application and audit logs to KMS-encrypted log groups; sized by props) and its k-NN
 * index, created by a TypeScript custom resource whose role is the domain's master user. Functions get
 * access through `grantWrite` and `grantRead`, which add the IAM permission on the exact API paths and
 * map their roles to OpenSearch roles of the index.
 */
export class VectorKnowledgeBase extends Construct {
  public readonly domain: opensearch.Domain;
  public readonly index: KnnIndex;
  /** Serves the `Custom::KnnIndex` resource; the domain's master user. */
  public readonly indexManager: lambda.Function;
  /** Holds the custom resource's events that failed every retry. */
  public readonly indexManagerDeadLetterQueue: sqs.Queue;
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly vpc?: ec2.IVpc;

  constructor(scope: Construct, id: string, props: VectorKnowledgeBaseProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'VectorKnowledgeBase', props, { encryptionKey: 'object', index: 'object' });
    const capacity = props.capacity ?? {};
    this.validate(capacity, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    this.vpc = props.vpc;
    const zones = capacity.availabilityZoneCount ?? 1;

    this.indexManagerDeadLetterQueue = terminalQueue(this, 'IndexManagerDeadLetters', { encryptionKey: props.encryptionKey, removalPolicy, holds: 'the dead-letter queue of the index manager' });
    const manager = new MlFunction(this, 'IndexManager', {
      handler: 'knn-index',
      description: 'Creates, updates and deletes the k-NN index of the knowledge base (custom resource)',
      encryptionKey: props.encryptionKey,
      calls: 'the OpenSearch domain of the knowledge base and the CloudFormation response URL',
      timeout: Duration.minutes(5),
      memorySize: 256,
      reservedConcurrency: 2,
      deadLetterQueue: this.indexManagerDeadLetterQueue,
      environment: { POWERTOOLS_SERVICE_NAME: 'knn-index' },
      logRetention: retention,
      logRemovalPolicy: removalPolicy,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
    });
    this.indexManager = manager.function;

    const logGroup = (logId: string) => new logs.LogGroup(this, logId, { encryptionKey: props.encryptionKey, retention, removalPolicy });
    const slowSearchLogs = logGroup('SlowSearchLogs');
    const slowIndexLogs = logGroup('SlowIndexLogs');
    const appLogs = logGroup('ApplicationLogs');
    const auditLogs = logGroup('AuditLogs');
    // The domain's own CloudWatch Logs policy would be written by an AwsCustomResource (a Lambda function
    // of aws-cdk-lib's): a plain resource policy does the same without one.
    const logsPolicy = new logs.ResourcePolicy(this, 'LogsPolicy', {
      policyStatements: [
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal('es.amazonaws.com')],
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [slowSearchLogs, slowIndexLogs, appLogs, auditLogs].map((group) => group.logGroupArn),
          conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
        }),
      ],
    });

    this.domain = new opensearch.Domain(this, 'Resource', {
      version: props.engineVersion ?? opensearch.EngineVersion.OPENSEARCH_2_19,
      capacity: {
        dataNodes: capacity.dataNodes ?? 1,
        dataNodeInstanceType: capacity.dataNodeInstanceType ?? 't3.medium.search',
        masterNodes: capacity.masterNodes,
        masterNodeInstanceType: capacity.masterNodes ? (capacity.masterNodeInstanceType ?? 'm6g.large.search') : undefined,
        // Standby replicas double the bill; zone awareness gives the multi-AZ resilience prod needs.
        multiAzWithStandbyEnabled: false,
      },
      ebs: { enabled: true, volumeSize: capacity.ebsVolumeSizeGiB ?? 10, volumeType: ec2.EbsDeviceVolumeType.GP3 },
      zoneAwareness: zones > 1 ? { enabled: true, availabilityZoneCount: zones } : undefined,
      encryptionAtRest: { enabled: true, kmsKey: props.encryptionKey },
      nodeToNodeEncryption: true,
      enforceHttps: true,
      tlsSecurityPolicy: opensearch.TLSSecurityPolicy.TLS_1_2,
      fineGrainedAccessControl: { masterUserArn: manager.role.roleArn },
      logging: {
        slowSearchLogEnabled: true,
        slowSearchLogGroup: slowSearchLogs,
        slowIndexLogEnabled: true,
        slowIndexLogGroup: slowIndexLogs,
        appLogEnabled: true,
        appLogGroup: appLogs,
        auditLogEnabled: true,
        auditLogGroup: auditLogs,
      },
      suppressLogsResourcePolicy: true,
      enableVersionUpgrade: true,
      vpc: props.vpc,
      vpcSubnets: props.vpc ? [props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED, onePerAz: true }] : undefined,
      removalPolicy,
    });
    this.domain.node.addDependency(logsPolicy);
    // Requests must come from IAM principals of this account (their own policies say which); aws-cdk-lib's
    // accessPolicies prop would write this through a custom resource of its own. The domain cannot name its
    // own ARN here, hence domain/* of this account and region.
    const stack = Stack.of(this);
    (this.domain.node.defaultChild as opensearch.CfnDomain).accessPolicies = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: `arn:${stack.partition}:iam::${stack.account}:root` },
          Action: 'es:ESHttp*',
          Resource: `arn:${stack.partition}:es:${stack.region}:${stack.account}:domain/*/*`,
        },
      ],
    };
    if (props.vpc) this.domain.connections.allowDefaultPortFrom(this.indexManager, 'The index manager creates the k-NN index');
    this.acknowledgeDomain(capacity, zones, props);

    this.index = new KnnIndex(this, 'Index', {
      ...props.index,
      domain: this.domain,
      provider: this.indexManager,
      removalPolicy,
    });
    // A policy of its own, attached from the policy's side: the role's managed-policy list cannot name the
    // domain, whose master user is the role.
    const indexPaths = [`${this.domain.domainArn}/${props.index.indexName}`, `${this.domain.domainArn}/${props.index.indexName}/*`, `${this.domain.domainArn}/_plugins/_security/api/*`];
    const managerPolicy = new iam.ManagedPolicy(this, 'IndexManagerPolicy', {
      description: 'Lets the index manager create the k-NN index and its security roles',
      roles: [manager.role],
      statements: [new iam.PolicyStatement({ actions: ['es:ESHttpHead', 'es:ESHttpGet', 'es:ESHttpPut', 'es:ESHttpDelete'], resources: indexPaths })],
    });
    this.index.resource.node.addDependency(managerPolicy);
    for (const path of indexPaths.filter((arn) => arn.endsWith('*'))) {
      acknowledgeWildcardResource(managerPolicy, path, "The index manager reads and changes the index's mapping and the index's own security roles and role mappings, under paths OpenSearch names after the index and role.");
    }
    if (props.alarmAction) this.createAlarms(props.alarmAction, capacity.ebsVolumeSizeGiB ?? 10);
  }

  private createAlarms(action: cloudwatch.IAlarmAction, volumeGiB: number): void {
    const period = Duration.minutes(5);
    const alarm = (alarmId: string, metric: cloudwatch.Metric, threshold: number, comparisonOperator: cloudwatch.ComparisonOperator, alarmDescription: string) => {
      const created = metric.createAlarm(this, alarmId, { threshold, comparisonOperator, evaluationPeriods: 1, alarmDescription, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING });
      created.addAlarmAction(action);
      this.alarms.push(created);
    };
    const atLeast = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;
    alarm('ClusterRedAlarm', this.domain.metricClusterStatusRed({ period, statistic: 'Maximum' }), 1, atLeast, 'A primary shard of the knowledge base is unassigned: searches and ingestion of its documents fail.');
    alarm('IndexWritesBlockedAlarm', this.domain.metricClusterIndexWritesBlocked({ period, statistic: 'Maximum' }), 1, atLeast, 'The knowledge base blocks writes (storage or memory pressure): ingestion fails until it is resized.');
    alarm(
      'FreeStorageAlarm',
      this.domain.metricFreeStorageSpace({ period, statistic: 'Minimum' }),
      volumeGiB * 1024 * 0.25,
      cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      'A data node of the knowledge base has less than a quarter of its volume free: grow the volumes before writes are blocked.',
    );
    alarm('JvmMemoryPressureAlarm', this.domain.metricJVMMemoryPressure({ period, statistic: 'Maximum' }), 85, atLeast, 'JVM memory pressure of the knowledge base is over 85%: k-NN graphs may not fit; use larger data nodes.');
  }

  /** Lets a function index and delete chunks: `_bulk` and `_delete_by_query` of the index, as the index's writer role. */
  public grantWrite(fn: lambda.IFunction): iam.Grant {
    this.index.addWriter(this.roleOf(fn));
    this.allowConnectionsFrom(fn);
    return iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['es:ESHttpPost'],
      resourceArns: [`${this.domain.domainArn}/_bulk`, `${this.domain.domainArn}/${this.index.indexName}/_delete_by_query`],
    });
  }

  /** Lets a function search the index (`_search`), as the index's reader role. */
  public grantRead(fn: lambda.IFunction): iam.Grant {
    this.index.addReader(this.roleOf(fn));
    this.allowConnectionsFrom(fn);
    return iam.Grant.addToPrincipal({
      grantee: fn,
      actions: ['es:ESHttpPost', 'es:ESHttpGet'],
      resourceArns: [`${this.domain.domainArn}/${this.index.indexName}/_search`],
    });
  }

  /** The domain endpoint as the functions use it. */
  public get endpoint(): string {
    return `https://${this.domain.domainEndpoint}`;
  }

  private roleOf(fn: lambda.IFunction): iam.IRole {
    if (fn.role === undefined) throw new Error(`${this.node.path} (VectorKnowledgeBase): ${fn.node.path} has no role to map to an OpenSearch role`);
    return fn.role;
  }

  private allowConnectionsFrom(fn: lambda.IFunction): void {
    if (this.vpc) this.domain.connections.allowDefaultPortFrom(fn, `${fn.node.id} uses the knowledge base`);
  }

  private validate(capacity: VectorKnowledgeBaseCapacity, props: VectorKnowledgeBaseProps): void {
    const fail = (message: string): never => {
      throw new Error(`${this.node.path} (VectorKnowledgeBase): ${message}`);
    };
    for (const field of ['dataNodeInstanceType', 'masterNodeInstanceType'] as const) {
      const value = capacity[field];
      if (value !== undefined && !INSTANCE_TYPES.includes(value)) fail(`capacity.${field}: '${value}' is not an OpenSearch Service instance type (e.g. t3.medium.search, r6g.large.search)`);
    }
    const dataNodes = capacity.dataNodes ?? 1;
    if (!Number.isInteger(dataNodes) || dataNodes < 1) fail(`capacity.dataNodes: must be a whole number >= 1; got ${dataNodes}`);
    if (capacity.masterNodes !== undefined && ![3, 5].includes(capacity.masterNodes)) fail(`capacity.masterNodes: must be 3 or 5 (an odd quorum); got ${capacity.masterNodes}`);
    if (capacity.masterNodeInstanceType !== undefined && capacity.masterNodes === undefined) fail('capacity.masterNodeInstanceType: set masterNodes too');
    const zones = capacity.availabilityZoneCount ?? 1;
    if (![1, 2, 3].includes(zones)) fail(`capacity.availabilityZoneCount: must be 1, 2 or 3; got ${zones}`);
    if (zones > 1 && dataNodes % zones !== 0) fail(`capacity.dataNodes: must be a multiple of availabilityZoneCount (${zones}) to spread evenly; got ${dataNodes}`);
    const ebs = capacity.ebsVolumeSizeGiB ?? 10;
    if (!Number.isInteger(ebs) || ebs < 10) fail(`capacity.ebsVolumeSizeGiB: must be a whole number >= 10; got ${ebs}`);
    const replicas = props.index.replicas ?? 0;
    if (replicas > dataNodes - 1) fail(`index.replicas: ${replicas} replicas need at least ${replicas + 1} data nodes; capacity.dataNodes is ${dataNodes}`);
  }

  private acknowledgeDomain(capacity: VectorKnowledgeBaseCapacity, zones: number, props: VectorKnowledgeBaseProps): void {
    const acknowledge = Validations.of(this.domain);
    if (!props.vpc) {
      const reason = 'This environment has no VPC (config network.vpc): the domain has a public endpoint, and every request must be SigV4-signed by an IAM role that fine-grained access control maps to an OpenSearch role; HTTPS (TLS 1.2) only.';
      acknowledge.acknowledge({ id: 'AwsSolutions-OS1', reason }, { id: 'HIPAA.Security-OpenSearchInVPCOnly', reason }, { id: 'NIST.800.53.R5-OpenSearchInVPCOnly', reason });
    }
    acknowledge.acknowledge({
      id: 'AwsSolutions-OS3',
      reason: `Callers are Lambda functions without fixed IP addresses, so an IP allowlist cannot name them; access is granted per IAM role (SigV4, fine-grained access control)${props.vpc ? ' and the domain only accepts HTTPS from their security groups inside the VPC' : ''}.`,
    });
    if (capacity.masterNodes === undefined) {
      acknowledge.acknowledge({ id: 'AwsSolutions-OS4', reason: 'A small knowledge base (config rag.domain.masterNodes unset, as in dev): the data nodes elect a master among themselves; production sets dedicated masters.' });
    }
    if (zones === 1) {
      const reason = 'A single-zone knowledge base to save cost (config rag.domain.availabilityZoneCount = 1, as in dev); production spreads the data nodes over zones.';
      acknowledge.acknowledge({ id: 'AwsSolutions-OS7', reason }, { id: 'NIST.800.53.R5-OpenSearchZoneAwarenessEnabled', reason }, { id: 'HIPAA.Security-OpenSearchZoneAwarenessEnabled', reason });
    }
  }
}
