import { Duration, Stack, Tags, Token } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
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
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import type { MlWorkflowOptions } from '../core/workflow-options';
import type { ModelPackageGroup } from './model-package-group';
import { grantRunJobs, sageMakerJobState } from './private/sagemaker-job';
import { assertRequiredProps, checkPropType, invalidProps } from '../core/private/props';

const TRANSFORM_INSTANCE_TYPES: readonly string[] = Object.values(TransformInstanceType);

/** What the transform answers with, and the input type by default, when it loads precomputed predictions. */
const JSON_LINES = 'application/jsonlines';

/** The loader's bounds on `ttlSeconds` (lambda/shared/precomputed-load.ts). */
const MIN_PRECOMPUTED_TTL_SECONDS = 60;
const MAX_PRECOMPUTED_TTL_SECONDS = 366 * 86_400;

/** How much longer the workflow may run when it loads precomputed predictions: the loader's calls together. */
const PRECOMPUTED_LOAD_BUDGET = Duration.hours(2);

/**
 * Loading a batch run's results into the inference API's state table as precomputed predictions (the
 * batch layer of the Lambda architecture), one item per record id, which the API serves to a request
 * that names the entity (`entity: { featureGroup, recordId }`) while it is fresh.
 */
export interface PrecomputedLoadOptions {
  /**
   * The inference API's state table (`InferenceStateTable.table`): partition key `pk` (string), TTL
   * attribute `ttl`. When it has an `encryptionKey` the loader is granted that key for its writes.
   */
  readonly table: dynamodb.ITable;
  /**
   * The feature group the input records' ids belong to: the `entity.featureGroup` an API request names.
   * Fixed by the construct, not by the run's input, so that a run cannot write another group's answers.
   */
  readonly featureGroupName: string;
  /**
   * Where each joined record holds its id: a top-level field name (`customer_id`) or a JSON pointer
   * (`/customer/id`) of a JSON record, whose id must be a non-empty string or a whole number; with a CSV
   * `contentType`, the column (from 0) of the joined row after `outputFilter`: `'0'` with inputFilter `$[1:]`
   * and outputFilter `$[0,-1]` (the id, then the answer), the form SageMaker's built-in algorithms fit. A CSV
   * answer is stored as text/csv and served to requests that accept text/csv.
   */
  readonly recordIdField: string;
  /**
   * How long after the run started each answer is kept: DynamoDB deletes it after that (within days).
   * Whether an answer is still fresh enough to serve is the API's setting. 1 minute to 366 days.
   */
  readonly ttl: Duration;
  /**
   * The model the answers are stored for: the name the API serves it under (`POST /models/{model}/predict`).
   * @default - the model family of `modelPackageGroup`
   */
  readonly model?: string;
}

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
   * MIME type of the input records. With `precomputed` it is a JSON type (SageMaker joins the model's answer
   * into each JSON record as SageMakerOutput) or text/csv (it appends the answer to the row).
   * @default 'text/csv', or 'application/jsonlines' with `precomputed`
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
   * Run the transform in this VPC (isolated subnets), and the precomputed-predictions loader: it then
   * reaches S3 and DynamoDB through the VPC's endpoints for them.
   * @default - SageMaker's own network, with network isolation
   */
  readonly vpc?: ec2.IVpc;
  /**
   * After a successful transform, load its results into the inference API's state table as precomputed
   * predictions. The transform then answers JSON Lines (`Accept: application/jsonlines`) joined to JSON
   * input records, which the loader reads; the workflow's timeout grows by two hours for the load.
   * @default - the results stay in S3 only
   */
  readonly precomputed?: PrecomputedLoadOptions;
}

/**
 * Batch inference (seed pattern 16): a Step Functions workflow that scores every record under an S3
 * prefix with a registered model version in a SageMaker batch transform job (`.sync`), filtering what
 * the model sees and joining each prediction to its input record, and writes the results to a
 * KMS-encrypted prefix. It runs on an EventBridge Scheduler schedule and on demand from the console
 * with `examples/inputs/batch-inference.json`, with the same retries, catch and notifications as the
 * other lifecycle workflows. With `precomputed` it then loads the results into the inference API's state
 * table (lambda/load-precomputed, called in a loop over its continuation), where the API serves each
 * entity's answer while it is fresh: the batch layer of the Lambda architecture.
 */
export class BatchInference extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly role: SageMakerExecutionRole;
  public readonly defaults: Record<string, unknown>;
  /**
   * The function that loads each run's results into the state table.
   * @default - none without `precomputed`
   */
  public readonly precomputedLoader?: lambda.Function;

  constructor(scope: Construct, id: string, props: BatchInferenceProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'BatchInference', props, { modelPackageGroup: 'construct', bucket: 'object', inferenceImages: 'array', instanceType: 'string', notificationTopic: 'object', encryptionKey: 'object' });
    const group = props.modelPackageGroup;
    const family = group.modelFamily;
    const where = `${this.node.path} (BatchInference)`;
    const count = props.instanceCount ?? 1;
    const scheduledPrefix = props.scheduledInputPrefix ?? `${family}/batch-input/current/`;
    const problems: string[] = [];
    if (!Token.isUnresolved(props.instanceType) && !TRANSFORM_INSTANCE_TYPES.includes(props.instanceType)) {
      problems.push(`instanceType: '${props.instanceType}' is not a SageMaker transform instance type (for example ml.m5.xlarge)`);
    }
    if (!Number.isInteger(count) || count < 1) problems.push(`instanceCount: must be a whole number of at least 1; got ${count}`);
    if (!scheduledPrefix.startsWith(`${family}/batch-input/`)) problems.push(`scheduledInputPrefix: must be under ${family}/batch-input/; got '${scheduledPrefix}'`);
    problems.push(...precomputedProblems(props));
    if (problems.length > 0) throw invalidProps(where, problems);
    const precomputed = props.precomputed;
    const contentType = props.contentType ?? (precomputed ? JSON_LINES : 'text/csv');
    // With precomputed, what the loader reads: joined JSON Lines, or joined CSV rows for a CSV model.
    const loadFormat = isCsv(contentType) ? 'csv' : 'jsonl';

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
            ContentType: contentType,
            SplitType: props.splitType ?? 'Line',
          },
          // One answer per line, joined to its JSON input record: the JSON Lines the loader reads.
          TransformOutput: { 'S3OutputPath.$': outputUri, KmsKeyId: key.keyArn, Accept: precomputed && loadFormat === 'jsonl' ? JSON_LINES : contentType, AssembleWith: 'Line' },
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
        ...(precomputed ? { precomputed: this.loadReport(precomputed, family) } : {}),
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });
    // The model is deleted before the load: a load that fails leaves nothing behind but the results in S3.
    let afterScoring: sfn.IChainable = verdict;
    if (precomputed) {
      this.precomputedLoader = this.createLoader(props, precomputed);
      afterScoring = this.loadPrecomputed(props, precomputed, this.precomputedLoader, outputUri, errors, verdict);
    }
    describe.next(
      new sfn.Choice(this, 'Version of this family?')
        .when(sfn.Condition.stringEquals('$.package.group', group.modelPackageGroupName), createModel.next(transform).next(deleteModel).next(afterScoring))
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

    const jobsTimeout = (props.timeout ?? Duration.hours(6)).plus(Duration.hours(1));
    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Batch inference of model ${family}`,
      encryptionKey: key,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: precomputed ? jobsTimeout.plus(PRECOMPUTED_LOAD_BUDGET) : jobsTimeout,
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
    if (this.precomputedLoader) {
      acknowledgeWildcardResource(policy, `${this.precomputedLoader.functionArn}:*`, 'The Lambda task may invoke the loader by version or alias (<function ARN>:*); the grant names that one function only.');
    }
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

  /** The loader, granted what it reads and writes: this family's batch results, the table and their keys. */
  private createLoader(props: BatchInferenceProps, options: PrecomputedLoadOptions): lambda.Function {
    const family = props.modelPackageGroup.modelFamily;
    const loader = new MlFunction(this, 'PrecomputedLoader', {
      handler: 'load-precomputed',
      description: `Loads batch predictions of ${family} into the inference API's state table`,
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'the batch inference workflow, which retries and catches its errors',
      calls: 'S3 and DynamoDB',
      timeout: Duration.minutes(15),
      memorySize: 1024,
      // One load per run; two let an on-demand run load beside a scheduled one.
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'precomputed-predictions',
        POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Inference',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    const outputs = props.bucket.arnForObjects(`${family}/batch-output/*`);
    iam.Grant.addToPrincipal({ grantee: loader.role, actions: ['s3:GetObject'], resourceArns: [outputs] });
    iam.Grant.addToPrincipal({ grantee: loader.role, actions: ['s3:ListBucket'], resourceArns: [props.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': `${family}/batch-output/*` } } });
    // The transform encrypts its results with the workflow's key.
    props.encryptionKey.grant(loader.role, 'kms:Decrypt');
    iam.Grant.addToPrincipal({ grantee: loader.role, actions: ['dynamodb:BatchWriteItem'], resourceArns: [options.table.tableArn] });
    options.table.encryptionKey?.grant(loader.role, 'kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey');
    acknowledgeWildcardResource(loader.role.grantsPolicy, outputs, 'The loader reads the results of the run it is called for, under batch-output/<run id>/, a prefix named at run time; read-only.');
    return loader.function;
  }

  /**
   * The load of one run's results: the loader called again with its continuation until it is done (each
   * call stops a minute before its deadline), then a check that it loaded something. Throttled writes are
   * retried with backoff (a retry rewrites the same items); any other error goes to the failure notice.
   */
  private loadPrecomputed(props: BatchInferenceProps, options: PrecomputedLoadOptions, loader: lambda.IFunction, outputUri: string, errors: FailureNotice, next: sfn.IChainable): sfn.IChainable {
    const start = new sfn.Pass(this, 'Start loading predictions', { result: sfn.Result.fromObject({ continuation: null }), resultPath: '$.load' });
    const load = new tasks.LambdaInvoke(this, 'Load precomputed predictions', {
      comment: 'Writes one item per record id into the state table; stops before its deadline with a continuation.',
      lambdaFunction: loader,
      payload: sfn.TaskInput.fromObject({
        tableName: options.table.tableName,
        model: options.model ?? props.modelPackageGroup.modelFamily,
        // ModelPackageVersion is a number; the item holds it as a string.
        'modelVersion.$': "States.Format('{}', $.package.version)",
        featureGroup: options.featureGroupName,
        'outputPrefix.$': outputUri,
        recordIdField: options.recordIdField,
        format: isCsv(props.contentType ?? JSON_LINES) ? 'csv' : 'jsonl',
        ttlSeconds: options.ttl.toSeconds(),
        // The run's start: no answer is younger than the input it was computed from.
        'computedAt.$': '$$.Execution.StartTime',
        'continuation.$': '$.load.continuation',
      }),
      resultSelector: {
        'loaded.$': '$.Payload.loaded',
        'invalid.$': '$.Payload.invalid',
        'objects.$': '$.Payload.objects',
        'invalidLines.$': '$.Payload.invalidLines',
        'done.$': '$.Payload.done',
        'continuation.$': '$.Payload.continuation',
      },
      resultPath: '$.load',
      retryOnServiceExceptions: true,
    });
    errors.retry(load);
    load.addRetry({ errors: ['PrecomputedWriteRetriableError'], interval: Duration.seconds(30), backoffRate: 2, maxAttempts: 5, maxDelay: Duration.minutes(5), jitterStrategy: sfn.JitterType.FULL });
    load.addCatch(errors.entry, { errors: ['States.ALL'], resultPath: '$.error' });
    // Every line invalid (or none at all) is a failed load, not an empty success: the API would keep
    // asking the model with nobody told why.
    const nothingLoaded = new sfn.Pass(this, 'Nothing loaded', {
      parameters: {
        Error: 'NoPrecomputedPredictions',
        'Cause.$': `States.Format('no line of the transform output under {} was loaded: {} invalid, the first: {}', ${outputUri}, $.load.invalid, States.JsonToString($.load.invalidLines))`,
      },
      resultPath: '$.error',
    });
    nothingLoaded.next(errors.entry);
    return start.next(load).next(
      new sfn.Choice(this, 'All predictions loaded?')
        .when(sfn.Condition.booleanEquals('$.load.done', false), load)
        .when(sfn.Condition.numberGreaterThan('$.load.loaded', 0), next)
        .otherwise(nothingLoaded),
    );
  }

  /** What the verdict says of the load. */
  private loadReport(options: PrecomputedLoadOptions, family: string): Record<string, unknown> {
    return {
      table: options.table.tableName,
      model: options.model ?? family,
      featureGroup: options.featureGroupName,
      'loaded.$': '$.load.loaded',
      'invalid.$': '$.load.invalid',
      'invalidLines.$': '$.load.invalidLines',
      'objects.$': '$.load.objects',
    };
  }
}

/** Whether records are CSV rows (the transform then appends each answer to its row). */
function isCsv(contentType: string | undefined): boolean {
  return contentType !== undefined && !Token.isUnresolved(contentType) && /^text\/csv\b/i.test(contentType);
}

/** The problems of the `precomputed` prop, and of the props it constrains, each named by its path. */
function precomputedProblems(props: BatchInferenceProps): string[] {
  const options = props.precomputed;
  if (options === undefined) return [];
  const shape = checkPropType(options, 'precomputed', 'object');
  if (shape.length > 0) return shape;
  const problems = [
    ...checkPropType(options.table, 'precomputed.table', 'construct'),
    ...checkPropType(options.featureGroupName, 'precomputed.featureGroupName', 'string'),
    ...checkPropType(options.recordIdField, 'precomputed.recordIdField', 'string'),
    ...checkPropType(options.model, 'precomputed.model', 'string', { optional: true }),
  ];
  for (const [name, value] of [
    ['featureGroupName', options.featureGroupName],
    ['model', options.model],
  ] as const) {
    if (typeof value !== 'string') continue;
    if (Token.isUnresolved(value)) problems.push(`precomputed.${name}: must be a plain string (it is part of every item's key); got a token`);
    else if (value.length === 0) problems.push(`precomputed.${name}: must be a non-empty string`);
  }
  const field = options.recordIdField;
  const csv = isCsv(props.contentType);
  if (typeof field === 'string' && !Token.isUnresolved(field) && csv) {
    if (!(/^\d{1,3}$/.test(field))) problems.push(`precomputed.recordIdField: must be a column number (0-999) of the joined, filtered CSV row with a CSV contentType, e.g. '0' with outputFilter '$[0,-1]'; got '${field}'`);
  } else if (typeof field === 'string' && !Token.isUnresolved(field)) {
    if (field.length === 0) problems.push('precomputed.recordIdField: must be a field name or a JSON pointer (/a/b)');
    else if (field.startsWith('/') && /~(?![01])/.test(field)) problems.push(`precomputed.recordIdField: '${field}' is not a JSON pointer: '~' must be followed by 0 or 1`);
  }
  const ttl = options.ttl as Duration | undefined;
  if (ttl === undefined) {
    problems.push('precomputed.ttl: is required');
  } else if (typeof ttl?.toSeconds !== 'function') {
    problems.push('precomputed.ttl: must be a Duration');
  } else {
    const seconds = ttl.toSeconds({ integral: false });
    if (!Token.isUnresolved(seconds) && !(Number.isInteger(seconds) && seconds >= MIN_PRECOMPUTED_TTL_SECONDS && seconds <= MAX_PRECOMPUTED_TTL_SECONDS)) {
      problems.push(`precomputed.ttl: must be a whole number of seconds from 1 minute to 366 days; got ${ttl.toHumanString()}`);
    }
  }
  // The loader reads JSON records with the model's answer joined in as SageMakerOutput, or CSV rows with
  // the answer appended (filtered to the id and the answer, usually).
  const contentType = props.contentType;
  if (contentType !== undefined && !Token.isUnresolved(contentType) && !/json/i.test(contentType) && !csv) {
    problems.push(`contentType: must be a JSON type (${JSON_LINES}) or text/csv with precomputed: the loader reads joined JSON records or CSV rows; got '${contentType}'`);
  }
  if (props.splitType !== undefined && props.splitType !== 'Line') problems.push(`splitType: must be 'Line' with precomputed (one record a line); got '${props.splitType}'`);
  if (props.joinInputToOutput === false) problems.push('joinInputToOutput: must not be false with precomputed: the loader finds each answer\'s record id in its joined input record');
  const filter = props.outputFilter;
  if (!csv && filter !== undefined && !Token.isUnresolved(filter) && filter.trim() !== '$') {
    // The record id's top-level field, which the filter must keep (a rough check: that it names it).
    const idField = typeof field === 'string' && field.length > 0 ? (field.startsWith('/') ? field.slice(1).split('/')[0].replace(/~1/g, '/').replace(/~0/g, '~') : field) : undefined;
    const dropped = [...(idField ? [idField] : []), 'SageMakerOutput'].filter((name) => !filter.includes(name));
    if (dropped.length > 0) problems.push(`outputFilter: must keep ${dropped.join(' and ')} with precomputed, e.g. $['${idField ?? 'id'}','SageMakerOutput']; got '${filter}'`);
  }
  return problems;
}
