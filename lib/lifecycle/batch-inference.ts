import { Duration, Stack, Tags, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { TransformInstanceType } from '../core/private/aws-enums';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, RUN_ID_EXPRESSION, validateExecutionInput, type InputField } from '../core/input-validation';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import type { MlWorkflowOptions } from '../core/workflow-options';
import type { ModelPackageGroup } from './model-package-group';
import { grantRunJobs, sageMakerJobState } from './private/sagemaker-job';
import { assertRequiredProps } from '../core/private/props';

const TRANSFORM_INSTANCE_TYPES: readonly string[] = Object.values(TransformInstanceType);

export interface BatchInferenceProps extends MlWorkflowOptions {
  /** The registry: each run scores with the version it names, or the latest approved one. */
  readonly modelPackageGroup: ModelPackageGroup;
  /** Bucket of the inputs (`<family>/batch-input/...`) and results (`<family>/batch-output/<run id>/`). */
  readonly bucket: s3.IBucket;
  /** The inference images the family's registered versions name (ECR URIs); the transform jobs may pull only these. */
  readonly inferenceImages: string[];
  /** Transform instance type, checked against the SDK's `TransformInstanceType`. */
  readonly instanceType: string;
  /**
   * @default 1
   */
  readonly instanceCount?: number;
  /**
   * MIME type of the input records.
   * @default 'text/csv'
   */
  readonly contentType?: string;
  /**
   * How input files are split into records.
   * @default 'Line'
   */
  readonly splitType?: 'None' | 'Line' | 'RecordIO' | 'TFRecord';
  /**
   * JSONPath selecting what of each input record the model sees, e.g. `$[1:]` to drop an id column.
   * @default - the whole record
   */
  readonly inputFilter?: string;
  /**
   * Join each input record to its prediction in the output, so results keep their ids.
   * @default true
   */
  readonly joinInputToOutput?: boolean;
  /**
   * JSONPath selecting what of each joined record is written, e.g. `$[0,-1]` for the id and the score.
   * @default - the whole joined record
   */
  readonly outputFilter?: string;
  /**
   * Longest a transform job may run before the state times out.
   * @default Duration.hours(6)
   */
  readonly timeout?: Duration;
  /**
   * Score `scheduledInputPrefix` on this EventBridge Scheduler expression, e.g. `cron(0 2 * * ? *)`.
   * @default - on demand only
   */
  readonly schedule?: scheduler.ScheduleExpression;
  /**
   * What scheduled runs score.
   * @default `<family>/batch-input/current/`
   */
  readonly scheduledInputPrefix?: string;
  /**
   * Run the transform in this VPC (isolated subnets).
   * @default - SageMaker's own network, with network isolation
   */
  readonly vpc?: ec2.IVpc;
}

/**
 * Batch inference (seed pattern 16): a Step Functions workflow that scores every record under an S3
 * prefix with a registered model version in a SageMaker batch transform job (`.sync`), filtering what
 * the model sees and joining each prediction to its input record, and writes the results to a
 * KMS-encrypted prefix. It runs on an EventBridge Scheduler schedule and on demand from the console
 * with `examples/inputs/batch-inference.json`, with the same retries, catch and notifications as the
 * other lifecycle workflows.
 */
export class BatchInference extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly role: SageMakerExecutionRole;
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: BatchInferenceProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'BatchInference', props, { modelPackageGroup: 'construct', bucket: 'object', inferenceImages: 'array', instanceType: 'string', notificationTopic: 'object', encryptionKey: 'object' });
    const group = props.modelPackageGroup;
    const family = group.modelFamily;
    const where = `${this.node.path} (BatchInference)`;
    if (!Token.isUnresolved(props.instanceType) && !TRANSFORM_INSTANCE_TYPES.includes(props.instanceType)) {
      throw new Error(`${where}: instanceType: '${props.instanceType}' is not a SageMaker transform instance type (for example ml.m5.xlarge)`);
    }
    const count = props.instanceCount ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new Error(`${where}: instanceCount: must be a whole number of at least 1; got ${count}`);
    const scheduledPrefix = props.scheduledInputPrefix ?? `${family}/batch-input/current/`;
    if (!scheduledPrefix.startsWith(`${family}/batch-input/`)) throw new Error(`${where}: scheduledInputPrefix: must be under ${family}/batch-input/; got '${scheduledPrefix}'`);

    const stack = Stack.of(this);
    const key = props.encryptionKey;
    const arn = (resource: string) => `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:${resource}`;
    this.role = new SageMakerExecutionRole(this, 'JobRole', { description: `Batch transform jobs of ${family}`, allowVpcAccess: props.vpc !== undefined });
    const jobRole = this.role.role;
    const inputs = props.bucket.arnForObjects(`${family}/batch-input/*`);
    const outputs = props.bucket.arnForObjects(`${family}/batch-output/*`);
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:GetObject'], resourceArns: [inputs] });
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: [outputs] });
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:ListBucket'], resourceArns: [props.bucket.bucketArn] });
    key.grant(jobRole, 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt', 'kms:CreateGrant', 'kms:DescribeKey');
    acknowledgeWildcardResource(jobRole.grantsPolicy, inputs, 'Each run names the input prefix it scores, under this family\'s batch-input/ prefix; read-only.');
    acknowledgeWildcardResource(jobRole.grantsPolicy, outputs, 'Each run writes its results under batch-output/<run id>/, a prefix named at run time.');
    // The model container comes from the registered version: the job role pulls the images the family's
    // versions name, and reads the artifact under the training run that produced it.
    for (const image of props.inferenceImages) this.role.grantPullImage(image);
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:GetObject'], resourceArns: [props.bucket.arnForObjects(`${family}/runs/*`)] });
    acknowledgeWildcardResource(jobRole.grantsPolicy, props.bucket.arnForObjects(`${family}/runs/*`), 'The version\'s model artifact lies under the training run that produced it; read-only.');

    let vpcConfig: Record<string, unknown> | undefined;
    if (props.vpc) {
      const securityGroup = new ec2.SecurityGroup(this, 'JobSecurityGroup', { vpc: props.vpc, description: `Batch transform jobs of ${family}`, allowAllOutbound: true });
      vpcConfig = { SecurityGroupIds: [securityGroup.securityGroupId], Subnets: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds };
    }

    this.defaults = { inputPrefix: scheduledPrefix };
    const errors = new FailureNotice(this, props.notificationTopic, `Batch inference of ${family} failed`, 'Batch inference failed');
    const call = (stateId: string, action: string, iamAction: string, iamResources: string[], parameters: Record<string, unknown>, rest: Partial<tasks.CallAwsServiceJsonPathProps> = {}) =>
      errors.protect(tasks.CallAwsService.jsonPath(this, stateId, { service: 'sagemaker', action, iamAction, iamResources, parameters, ...rest }));

    const latest = call(
      'Find latest approved version',
      'listModelPackages',
      'sagemaker:ListModelPackages',
      ['*'],
      { ModelPackageGroupName: group.modelPackageGroupName, ModelApprovalStatus: 'Approved', SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 1 },
      { resultSelector: { 'arns.$': '$.ModelPackageSummaryList[*].ModelPackageArn', 'count.$': 'States.ArrayLength($.ModelPackageSummaryList)' }, resultPath: '$.approved' },
    );
    const useLatest = new sfn.Pass(this, 'Use latest approved version', { parameters: { 'modelPackageArn.$': 'States.ArrayGetItem($.approved.arns, 0)' }, resultPath: '$.chosen' })
      .next(new sfn.Pass(this, 'Score with latest', { parameters: { 'config.$': 'States.JsonMerge($.config, $.chosen, false)', 'run.$': '$.run' } }));
    const describe = call('Describe model version', 'describeModelPackage', 'sagemaker:DescribeModelPackage', [group.modelPackageArns], { 'ModelPackageName.$': '$.config.modelPackageArn' }, {
      resultSelector: { 'group.$': '$.ModelPackageGroupName', 'version.$': '$.ModelPackageVersion' },
      resultPath: '$.package',
    });
    useLatest.next(describe);
    const createModel = call(
      'Create model',
      'createModel',
      'sagemaker:CreateModel',
      [arn(`model/${family}-batch-*`)],
      {
        'ModelName.$': `States.Format('${family}-batch-v{}-{}', $.package.version, $.run.id)`,
        PrimaryContainer: { 'ModelPackageName.$': '$.config.modelPackageArn' },
        ExecutionRoleArn: jobRole.roleArn,
        EnableNetworkIsolation: true,
        ...(vpcConfig ? { VpcConfig: vpcConfig } : {}),
        Tags: [
          { Key: 'ml:model-family', Value: family },
          { 'Key': 'ml:model-package-arn', 'Value.$': '$.config.modelPackageArn' },
        ],
      },
      {
        resultPath: sfn.JsonPath.DISCARD,
        additionalIamStatements: [
          new iam.PolicyStatement({ actions: ['sagemaker:AddTags'], resources: [arn(`model/${family}-batch-*`)] }),
          new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [jobRole.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } } }),
        ],
      },
    );
    const outputUri = `States.Format('s3://${props.bucket.bucketName}/${family}/batch-output/{}/', $.run.id)`;
    const transform = errors.protect(
      sageMakerJobState(this, 'Score records', {
        kind: 'transform',
        comment: 'Scores every record under the input prefix; waits for the job.',
        timeout: props.timeout ?? Duration.hours(6),
        parameters: {
          // A retried state creates its job again: the retry count keeps the name unique.
          'TransformJobName.$': `States.Format('${family}-batch-{}-{}', $.run.id, $$.State.RetryCount)`,
          'ModelName.$': `States.Format('${family}-batch-v{}-{}', $.package.version, $.run.id)`,
          BatchStrategy: 'MultiRecord',
          TransformInput: {
            DataSource: { S3DataSource: { S3DataType: 'S3Prefix', 'S3Uri.$': `States.Format('s3://${props.bucket.bucketName}/{}', $.config.inputPrefix)` } },
            ContentType: props.contentType ?? 'text/csv',
            SplitType: props.splitType ?? 'Line',
          },
          TransformOutput: { 'S3OutputPath.$': outputUri, KmsKeyId: key.keyArn, Accept: props.contentType ?? 'text/csv', AssembleWith: 'Line' },
          TransformResources: { InstanceType: props.instanceType, InstanceCount: count, VolumeKmsKeyId: key.keyArn },
          DataProcessing: {
            ...(props.inputFilter ? { InputFilter: props.inputFilter } : {}),
            JoinSource: props.joinInputToOutput ?? true ? 'Input' : 'None',
            ...(props.outputFilter ? { OutputFilter: props.outputFilter } : {}),
          },
          Tags: [
            { Key: 'ml:model-family', Value: family },
            { 'Key': 'ml:model-package-arn', 'Value.$': '$.config.modelPackageArn' },
          ],
        },
        resultSelector: { 'jobName.$': '$.TransformJobName' },
        resultPath: '$.transform',
      }),
      { capacity: true },
    );
    const deleteModel = call('Delete model', 'deleteModel', 'sagemaker:DeleteModel', [arn(`model/${family}-batch-*`)], { 'ModelName.$': `States.Format('${family}-batch-v{}-{}', $.package.version, $.run.id)` }, { resultPath: sfn.JsonPath.DISCARD });
    const verdict = new sfn.Pass(this, 'Completed verdict', {
      parameters: {
        result: 'completed',
        'modelPackageArn.$': '$.config.modelPackageArn',
        'input.$': `States.Format('s3://${props.bucket.bucketName}/{}', $.config.inputPrefix)`,
        'output.$': outputUri,
        'transformJob.$': '$.transform.jobName',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });
    describe.next(
      new sfn.Choice(this, 'Version of this family?')
        .when(sfn.Condition.stringEquals('$.package.group', group.modelPackageGroupName), createModel.next(transform).next(deleteModel).next(verdict))
        .otherwise(new sfn.Fail(this, 'Version of another family', { error: 'WrongModelFamily', causePath: "States.Format('{} belongs to model package group {}', $.config.modelPackageArn, $.package.group)" })),
    );
    verdict.next(errors.notify('Notify completion', `Model ${family}: batch inference completed`, '$.verdict')).next(done);

    const pick = new sfn.Choice(this, 'Version named?')
      .when(sfn.Condition.isPresent('$.config.modelPackageArn'), describe)
      .otherwise(
        latest.next(
          new sfn.Choice(this, 'Any approved version?')
            .when(sfn.Condition.numberGreaterThan('$.approved.count', 0), useLatest)
            .otherwise(new sfn.Fail(this, 'No approved version', { error: 'NoApprovedVersion', cause: `the ${family} registry has no approved version to score with` })),
        ),
      );
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        {
          path: '$.config.inputPrefix',
          type: 'string',
          check: { condition: sfn.Condition.stringMatches('$.config.inputPrefix', `${family}/batch-input/*`), expectation: `a prefix under ${family}/batch-input/` },
        },
        {
          path: '$.config.modelPackageArn',
          type: 'string',
          optional: true,
          check: {
            condition: sfn.Condition.stringMatches('$.config.modelPackageArn', `arn:*:sagemaker:*:*:model-package/${group.modelPackageGroupName.toLowerCase()}/*`),
            expectation: `a version of model package group ${group.modelPackageGroupName}`,
          },
        },
      ],
      pick,
    );
    const definition = inputOverDefaults(this, this.defaults, { parameters: { run: { 'id.$': RUN_ID_EXPRESSION } } }).next(validated);

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Batch inference of model ${family}`,
      encryptionKey: key,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: (props.timeout ?? Duration.hours(6)).plus(Duration.hours(1)),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'sagemaker:ListModelPackages has no resource-level permissions.',
    });
    const role = this.workflow.role;
    grantPublishTo(props.notificationTopic, role);
    grantRunJobs(role, 'transform', `${family}-batch-`, jobRole);
    key.grant(role, 'kms:CreateGrant', 'kms:DescribeKey');
    const policy = role.grantsPolicy;
    acknowledgeWildcardResource(policy, group.modelPackageArns, 'Versions get their ARNs (…/<group>/<version>) when registered; the grant covers this group\'s versions only.');
    acknowledgeWildcardResource(policy, arn(`model/${family}-batch-*`), `Each run creates (and deletes) a model named ${family}-batch-v<version>-<run id> at run time.`);
    Tags.of(this).add('ml:model-family', family);

    if (props.schedule) {
      const schedulerRole = new ManagedPolicyRole(this, 'SchedulerRole', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
        description: `Starts scheduled batch inference of ${family}`,
      });
      new scheduler.Schedule(this, 'Schedule', {
        description: `Scores ${scheduledPrefix} with the latest approved ${family} version`,
        schedule: props.schedule,
        key,
        target: new schedulerTargets.StepFunctionsStartExecution(this.workflow.stateMachine, {
          role: schedulerRole,
          input: scheduler.ScheduleTargetInput.fromObject({ inputPrefix: scheduledPrefix, trigger: { source: 'schedule' } }),
          retryAttempts: 3,
        }),
      });
    }
  }
}
