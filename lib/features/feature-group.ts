import { Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { checkPropType, invalidProps, keeps, resolveRemovalPolicy } from '../core/private/props';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { formatPath } from '../serving/private/variant-rules';
import { checkFeatureGroupDefinition, FEATURE_TYPE_NAMES, type FeatureGroupDefinition } from './feature-definition';

export interface FeatureGroupProps {
  /** The typed definition: identifier, event time, features with types and descriptions, owner. */
  readonly definition: FeatureGroupDefinition;
  /** Key that encrypts the online store and the offline store's objects. */
  readonly encryptionKey: kms.IKey;
  /** Bucket of the offline store; the group writes under `feature-store/<group name>/`. */
  readonly offlineStoreBucket: s3.IBucket;
  /**
   * Keep an online store for low-latency lookups by record identifier.
   * @default true
   */
  readonly onlineStore?: boolean;
  /**
   * What happens to the feature group (and its offline data) when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the feature group (and its offline data) when it leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
   * @default true
   */
  readonly retain?: boolean;
  /**
   * Glue database of the offline store's Iceberg table.
   * @default 'sagemaker_featurestore' (Feature Store's default database)
   */
  readonly glueDatabase?: string;
  /**
   * Alarms on the group: failed writes (critical), online read latency and throttling (warning).
   * @default - no alarms
   */
  readonly alarms?: FeatureGroupAlarmOptions;
}

export interface FeatureGroupAlarmOptions {
  /** Where the alarms notify. */
  readonly action: cloudwatch.IAlarmAction;
  /**
   * WARNING when the online store's p99 GetRecord latency exceeds this many milliseconds.
   * @default 50
   */
  readonly readLatencyP99Ms?: number;
}

/** Feature Store's own metrics, published per feature group and operation. */
export type FeatureStoreOperation = 'PutRecord' | 'GetRecord' | 'BatchGetRecord' | 'DeleteRecord';

/**
 * A SageMaker feature group from a typed definition: an online store (KMS, optional TTL) for
 * lookups by entity id and an offline store (S3 with KMS, Glue catalog, Iceberg table format) for
 * point-in-time training sets, retained by default. The definition is checked at synth: a duplicate
 * feature name, an unsupported type or a missing event-time feature fails with the field named.
 */
export class FeatureGroup extends Construct {
  public readonly resource: sagemaker.CfnFeatureGroup;
  public readonly definition: FeatureGroupDefinition;
  public readonly featureGroupName: string;
  public readonly featureGroupArn: string;
  /** The role Feature Store uses to write the offline store. */
  public readonly offlineStoreRole: ManagedPolicyRole;
  /** S3 URI of the offline store. */
  public readonly offlineStoreUri: string;
  /** The group's alarms, when `alarms` was given. */
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly encryptionKey: kms.IKey;

  constructor(scope: Construct, id: string, props: FeatureGroupProps) {
    super(scope, id);
    const where = `${this.node.path} (FeatureGroup)`;
    const shape = checkPropType(props, 'props', 'object');
    if (shape.length === 0) {
      shape.push(
        ...checkPropType(props.definition, 'definition', 'object'),
        ...checkPropType(props.offlineStoreBucket, 'offlineStoreBucket', 'object'),
        ...checkPropType(props.encryptionKey, 'encryptionKey', 'object'),
      );
    }
    if (shape.length > 0) throw invalidProps(where, shape);
    const definition = props.definition;
    const issues = checkFeatureGroupDefinition(definition);
    if (issues.length > 0) {
      throw new Error(`${this.node.path} (FeatureGroup): invalid definition:\n  - ${issues.map((issue) => `definition.${formatPath(issue.path)}: ${issue.message}`).join('\n  - ')}`);
    }
    this.definition = definition;
    this.encryptionKey = props.encryptionKey;
    const stack = Stack.of(this);
    this.featureGroupName = definition.name;
    // SageMaker lower-cases resource names in ARNs.
    this.featureGroupArn = `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:feature-group/${definition.name.toLowerCase()}`;

    const prefix = `feature-store/${definition.name}`;
    this.offlineStoreUri = props.offlineStoreBucket.s3UrlForObject(prefix);
    this.offlineStoreRole = new ManagedPolicyRole(this, 'OfflineStoreRole', {
      assumedBy: new iam.ServicePrincipal('sagemaker.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Feature Store offline store of ${definition.name}`,
    });
    const objects = props.offlineStoreBucket.arnForObjects(`${prefix}/*`);
    const database = props.glueDatabase ?? 'sagemaker_featurestore';
    const glue = (kind: string, name: string) => `arn:${stack.partition}:glue:${stack.region}:${stack.account}:${kind}/${name}`;
    const tables = glue('table', `${database}/*`);
    this.offlineStoreRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'], resources: [objects] }),
    );
    this.offlineStoreRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetBucketAcl', 's3:ListBucket', 's3:GetBucketLocation'], resources: [props.offlineStoreBucket.bucketArn] }),
    );
    this.offlineStoreRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['glue:GetDatabase', 'glue:CreateDatabase', 'glue:GetTable', 'glue:CreateTable', 'glue:UpdateTable'],
        resources: [`arn:${stack.partition}:glue:${stack.region}:${stack.account}:catalog`, glue('database', database), tables],
      }),
    );
    props.encryptionKey.grant(this.offlineStoreRole, 'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:DescribeKey');
    const policy = this.offlineStoreRole.grantsPolicy;
    acknowledgeWildcardResource(policy, objects, 'Feature Store writes one Iceberg data and metadata file per batch under this group\'s own prefix, with names it chooses.');
    acknowledgeWildcardResource(policy, tables, 'Feature Store names the Glue table after the group and a creation timestamp; the grant is limited to the Feature Store database.');

    const onlineStore = props.onlineStore ?? true;
    this.resource = new sagemaker.CfnFeatureGroup(this, 'Resource', {
      featureGroupName: definition.name,
      description: definition.description,
      recordIdentifierFeatureName: definition.recordIdentifier,
      eventTimeFeatureName: definition.eventTime,
      featureDefinitions: definition.features.map((feature) => ({ featureName: feature.name, featureType: FEATURE_TYPE_NAMES[feature.type] })),
      // These two properties are untyped JSON in the CloudFormation schema, so CDK passes them through
      // as written: the keys must already be in CloudFormation's PascalCase.
      onlineStoreConfig: onlineStore
        ? {
            EnableOnlineStore: true,
            SecurityConfig: { KmsKeyId: props.encryptionKey.keyArn },
            ...(definition.onlineTtlHours ? { TtlDuration: { Unit: 'Hours', Value: definition.onlineTtlHours } } : {}),
          }
        : undefined,
      offlineStoreConfig: {
        S3StorageConfig: { S3Uri: this.offlineStoreUri, KmsKeyId: props.encryptionKey.keyArn },
        TableFormat: 'Iceberg',
        DisableGlueTableCreation: false,
      },
      roleArn: this.offlineStoreRole.roleArn,
    });
    this.resource.node.addDependency(this.offlineStoreRole);
    this.resource.applyRemovalPolicy(keeps(resolveRemovalPolicy(where, props)) ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY);
    Tags.of(this.resource).add('ml:feature-owner', definition.owner);
    if (props.alarms) this.createAlarms(props.alarms);
  }

  private createAlarms(options: FeatureGroupAlarmOptions): void {
    const latencyMs = options.readLatencyP99Ms ?? 50;
    if (!(latencyMs > 0)) throw new Error(`${this.node.path} (FeatureGroup): alarms.readLatencyP99Ms: must be > 0; got ${latencyMs}`);
    const add = (alarmId: string, metric: cloudwatch.IMetric, threshold: number, description: string, evaluationPeriods = 3) => {
      const alarm = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `${description} (${this.featureGroupName})`,
      });
      alarm.addAlarmAction(options.action);
      alarm.addOkAction(options.action);
      this.alarms.push(alarm);
    };
    add('WriteErrors', this.metric5xxErrors('PutRecord'), 0, '[CRITICAL] Feature Store failed to write records', 1);
    add('ReadLatency', this.metricLatency('GetRecord'), latencyMs * 1000, `[WARNING] online store p99 read latency above ${latencyMs} ms`);
    add('Throttled', this.metricThrottled('PutRecord'), 0, '[WARNING] Feature Store is throttling writes');
  }

  /** Lets the grantee read records from the online store (GetRecord, BatchGetRecord). */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey.grant(grantee, 'kms:Decrypt');
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:GetRecord', 'sagemaker:BatchGetRecord'], resourceArns: [this.featureGroupArn] });
  }

  /** Lets the grantee write and delete records (PutRecord, DeleteRecord). */
  public grantWrite(grantee: iam.IGrantable): iam.Grant {
    this.encryptionKey.grant(grantee, 'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey');
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:PutRecord', 'sagemaker:DeleteRecord'], resourceArns: [this.featureGroupArn] });
  }

  /** A Feature Store metric of one operation on this group. */
  public metric(metricName: string, operation: FeatureStoreOperation, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: '/aws/sagemaker/FeatureStore',
      metricName,
      dimensionsMap: { FeatureGroupName: this.featureGroupName, OperationName: operation },
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Latency of an operation, in microseconds. Default: p99 over 5 minutes. */
  public metricLatency(operation: FeatureStoreOperation, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Latency', operation, { statistic: 'p99', ...props });
  }

  /** Server-side errors of an operation. Default: sum over 5 minutes. */
  public metric5xxErrors(operation: FeatureStoreOperation, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Operation5XXErrors', operation, { statistic: 'Sum', ...props });
  }

  /** Rejected calls of an operation (bad records, missing permissions). Default: sum over 5 minutes. */
  public metric4xxErrors(operation: FeatureStoreOperation, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Operation4XXErrors', operation, { statistic: 'Sum', ...props });
  }

  /** Throttled calls of an operation. Default: sum over 5 minutes. */
  public metricThrottled(operation: FeatureStoreOperation, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ThrottledRequests', operation, { statistic: 'Sum', ...props });
  }
}
