import { Duration, Stack, Tags } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, RUN_ID_EXPRESSION, validateExecutionInput, type InputField } from '../core/input-validation';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import type { MlWorkflowOptions } from '../core/workflow-options';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { ModelPackageGroup } from './model-package-group';
import { toApiShape } from './private/api-shape';
import { assertRequiredProps } from '../core/private/props';

export interface ModelDeploymentProps extends MlWorkflowOptions {
  /** The registry whose approved versions are deployed. */
  readonly modelPackageGroup: ModelPackageGroup;
  /** The endpoint that serves the family. */
  readonly endpoint: ModelEndpoint;
  /**
   * The production variant a new version replaces: the champion, or a challenger that the
   * champion–challenger workflow then promotes. An execution input may name another.
   * @default - the endpoint's first production variant
   */
  readonly targetVariant?: string;
  /**
   * Deploy each version as soon as it is approved (an EventBridge rule on SageMaker's "Model
   * Package State Change" events).
   * @default true
   */
  readonly deployOnApproval?: boolean;
  /**
   * Execution role of the models the workflow creates.
   * @default - a new SageMakerExecutionRole (with VPC access when the endpoint is in a VPC); grant it
   *   the artifacts and images of the registered versions (`modelRole.grantPullImage`, bucket grants)
   */
  readonly modelRole?: SageMakerExecutionRole;
  /**
   * How often the workflow checks the endpoint while it updates.
   * @default Duration.minutes(1)
   */
  readonly pollInterval?: Duration;
}

/**
 * Deploys an approved model version to an endpoint (seed patterns 10 and 16, the staging → production
 * step of the model lifecycle), as a Step Functions workflow that an approval starts and operators can
 * start from the console:
 *
 * 1. takes a model package ARN (or `rollbackToPrevious: true`, which picks the approved version before
 *    the latest), checks that it belongs to this family and is Approved;
 * 2. creates a SageMaker model from the package, named and tagged with its lineage (package, version,
 *    training job, data version, code version), in the endpoint's VPC and network isolation;
 * 3. creates an endpoint configuration from the endpoint's current one, with only the target
 *    variant's model replaced (weights, capacity, data capture, key and shadow variants kept);
 * 4. updates the endpoint, with the endpoint's deployment guardrails (canary or linear with
 *    automatic rollback on its alarms) when it has them, and waits;
 * 5. reports the deployment, or, when SageMaker rolled the update back or the endpoint failed, puts
 *    the previous configuration back and reports why.
 *
 * The input schema is in `examples/inputs/deploy-model.json`.
 */
export class ModelDeployment extends Construct {
  public readonly workflow: MlWorkflow;
  /** The execution role of the deployed models: it must read the registered versions' artifacts and pull their images. */
  public readonly modelRole: SageMakerExecutionRole;
  /** The defaults an execution input is merged over. */
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: ModelDeploymentProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'ModelDeployment', props, { modelPackageGroup: 'construct', endpoint: 'construct', notificationTopic: 'object', encryptionKey: 'object' });
    const endpoint = props.endpoint;
    const group = props.modelPackageGroup;
    const family = group.modelFamily;
    const production = endpoint.variants.filter((variant) => variant.kind === 'production').map((variant) => variant.name);
    const targetVariant = props.targetVariant ?? production[0];
    if (!production.includes(targetVariant)) {
      throw new Error(`${this.node.path} (ModelDeployment): targetVariant: '${targetVariant}' is not a production variant of the endpoint (${production.join(', ')})`);
    }
    // A registry version becomes a one-container model (PrimaryContainer.ModelPackageName): put in place
    // of a serial inference pipeline, it would silently drop the pipeline's other containers. Such
    // variants are refused here, and an execution input that names one fails validation.
    const pipelines = endpoint.variants.filter((variant) => variant.kind === 'production' && variant.containerCount > 1);
    const targetPipeline = pipelines.find((variant) => variant.name === targetVariant);
    if (targetPipeline) {
      throw new Error(
        `${this.node.path} (ModelDeployment): targetVariant: '${targetVariant}'${props.targetVariant === undefined ? " (the default, the endpoint's first production variant)" : ''} serves a serial inference pipeline of ${targetPipeline.containerCount} containers; ModelDeployment deploys each registry version as a one-container model and would drop the others: target a variant with one container`,
      );
    }
    const pollSeconds = (props.pollInterval ?? Duration.minutes(1)).toSeconds();
    if (pollSeconds < 1) throw new Error(`${this.node.path} (ModelDeployment): pollInterval: must be at least 1 second`);
    this.defaults = { targetVariant, rollbackToPrevious: false, force: false, pollSeconds };
    this.modelRole = props.modelRole ?? new SageMakerExecutionRole(this, 'ModelRole', { description: `Deployed versions of ${group.modelFamily}`, allowVpcAccess: props.endpoint.modelVpcConfig !== undefined });

    const stack = Stack.of(this);
    const errors = new FailureNotice(this, props.notificationTopic, `Deployment of ${family} failed`, 'Deployment failed');
    const protect = <T extends sfn.TaskStateBase>(task: T) => errors.protect(task);
    const sagemakerCall = (stateId: string, action: string, iamAction: string, iamResources: string[], parameters: Record<string, unknown>, rest: Partial<tasks.CallAwsServiceJsonPathProps> = {}) =>
      protect(tasks.CallAwsService.jsonPath(this, stateId, { service: 'sagemaker', action, iamAction, iamResources, parameters, ...rest }));
    const arn = (resource: string) => `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:${resource}`;
    const deployedNames = `${family}-v*`;

    // --- Which version ---------------------------------------------------------------------------
    const listApproved = sagemakerCall(
      'List approved versions',
      'listModelPackages',
      'sagemaker:ListModelPackages',
      ['*'],
      { ModelPackageGroupName: group.modelPackageGroupName, ModelApprovalStatus: 'Approved', SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 2 },
      { resultSelector: { 'arns.$': '$.ModelPackageSummaryList[*].ModelPackageArn', 'count.$': 'States.ArrayLength($.ModelPackageSummaryList)' }, resultPath: '$.approved' },
    );
    const pickPrevious = new sfn.Pass(this, 'Pick previous approved version', {
      parameters: { 'modelPackageArn.$': 'States.ArrayGetItem($.approved.arns, 1)' },
      resultPath: '$.previous',
    }).next(new sfn.Pass(this, 'Deploy previous version', { parameters: { 'config.$': 'States.JsonMerge($.config, $.previous, false)', 'deploy.$': '$.deploy' } }));
    const noPrevious = new sfn.Fail(this, 'No previous version', { error: 'NoPreviousVersion', cause: `rollbackToPrevious: the ${family} registry has fewer than two approved versions` });

    const describePackage = sagemakerCall(
      'Describe model version',
      'describeModelPackage',
      'sagemaker:DescribeModelPackage',
      [group.modelPackageArns],
      { 'ModelPackageName.$': '$.config.modelPackageArn' },
      { resultPath: '$.package' },
    );
    pickPrevious.next(describePackage);
    const whichVersion = new sfn.Choice(this, 'Roll back to previous?')
      .when(
        sfn.Condition.booleanEquals('$.config.rollbackToPrevious', true),
        listApproved.next(new sfn.Choice(this, 'Previous version exists?').when(sfn.Condition.numberGreaterThanEquals('$.approved.count', 2), pickPrevious).otherwise(noPrevious)),
      )
      .when(sfn.Condition.isPresent('$.config.modelPackageArn'), describePackage)
      .otherwise(new sfn.Fail(this, 'No version named', { error: 'InvalidInput', cause: 'modelPackageArn: must be given unless rollbackToPrevious is true' }));

    const wrongFamily = new sfn.Fail(this, 'Version of another family', {
      error: 'WrongModelFamily',
      causePath: `States.Format('{} belongs to model package group {}, not ${group.modelPackageGroupName}', $.config.modelPackageArn, $.package.ModelPackageGroupName)`,
    });
    const notApproved = new sfn.Fail(this, 'Version not approved', {
      error: 'NotApproved',
      causePath: "States.Format('{} is {}; only Approved versions are deployed', $.config.modelPackageArn, $.package.ModelApprovalStatus)",
    });
    const lineageDefaults = { TrainingJobName: 'unknown', DataVersion: 'unknown', CodeVersion: 'unknown' };
    const withLineage = new sfn.Pass(this, 'Read lineage', {
      parameters: { 'values.$': 'States.JsonMerge($.deploy.lineageDefaults, $.package.CustomerMetadataProperties, false)' },
      resultPath: '$.lineage',
    });
    const withoutLineage = new sfn.Pass(this, 'No recorded lineage', { parameters: { 'values.$': '$.deploy.lineageDefaults' }, resultPath: '$.lineage' });

    // --- Model and endpoint configuration ------------------------------------------------------
    const describeEndpoint = (stateId: string, resultPath: string) =>
      sagemakerCall(stateId, 'describeEndpoint', 'sagemaker:DescribeEndpoint', [endpoint.endpointArn], { EndpointName: endpoint.endpointName }, {
        resultSelector: { 'status.$': '$.EndpointStatus', 'configName.$': '$.EndpointConfigName' },
        resultPath,
      });
    const readEndpoint = describeEndpoint('Describe endpoint', '$.endpoint');
    const notReady = new sfn.Fail(this, 'Endpoint busy', {
      error: 'EndpointNotReady',
      causePath: "States.Format('the endpoint is {}; deploy when it is InService', $.endpoint.status)",
    });
    const readConfig = sagemakerCall(
      'Describe current endpoint configuration',
      'describeEndpointConfig',
      'sagemaker:DescribeEndpointConfig',
      [arn('endpoint-config/*')],
      { 'EndpointConfigName.$': '$.endpoint.configName' },
      { resultPath: '$.current' },
    );
    // Deploying the version the endpoint's last deployment put in place (an approval event that arrives
    // again, a console run repeated) changes nothing: the configuration it would create is the serving one.
    const readServingTags = sagemakerCall(
      'Read serving configuration tags',
      'listTags',
      'sagemaker:ListTags',
      [arn('endpoint-config/*')],
      { 'ResourceArn.$': '$.current.EndpointConfigArn', MaxResults: 100 },
      { resultSelector: { 'tags.$': '$.Tags' }, resultPath: '$.serving' },
    );
    const servingThisVersion = new sfn.Pass(this, 'Tag of this version', {
      parameters: { Key: 'ml:model-package-arn', 'Value.$': '$.config.modelPackageArn' },
      resultPath: '$.wanted',
    }).next(
      new sfn.Pass(this, 'Serving this version?', {
        parameters: { 'already.$': 'States.ArrayContains($.serving.tags, $.wanted)' },
        resultPath: '$.serving',
      }),
    );
    const alreadyDeployed = new sfn.Pass(this, 'Already deployed verdict', {
      parameters: {
        result: 'already-deployed',
        'modelPackageArn.$': '$.config.modelPackageArn',
        'endpointConfig.$': '$.current.EndpointConfigName',
        'reason.$': "States.Format('the endpoint already serves {} (configuration {}); start with force: true to deploy it again', $.config.modelPackageArn, $.current.EndpointConfigName)",
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const names = new sfn.Pass(this, 'Name deployment', {
      parameters: {
        'name.$': `States.Format('${family}-v{}-{}', $.package.ModelPackageVersion, $.deploy.id)`,
        'variantNames.$': '$.current.ProductionVariants[*].VariantName',
      },
      resultPath: '$.names',
    });
    const lineageTags = [
      { Key: 'ml:model-family', Value: family },
      { 'Key': 'ml:model-package-arn', 'Value.$': '$.config.modelPackageArn' },
      { 'Key': 'ml:model-version', 'Value.$': "States.Format('{}', $.package.ModelPackageVersion)" },
      { 'Key': 'ml:training-job', 'Value.$': '$.lineage.values.TrainingJobName' },
      { 'Key': 'ml:data-version', 'Value.$': '$.lineage.values.DataVersion' },
      { 'Key': 'ml:code-version', 'Value.$': '$.lineage.values.CodeVersion' },
      { 'Key': 'ml:deployed-by', 'Value.$': '$$.Execution.Id' },
    ];
    const createModel = sagemakerCall(
      'Create model',
      'createModel',
      'sagemaker:CreateModel',
      [arn(`model/${deployedNames}`)],
      {
        'ModelName.$': '$.names.name',
        PrimaryContainer: { 'ModelPackageName.$': '$.config.modelPackageArn' },
        ExecutionRoleArn: this.modelRole.role.roleArn,
        EnableNetworkIsolation: endpoint.networkIsolation,
        ...(endpoint.modelVpcConfig ? { VpcConfig: toApiShape(endpoint.modelVpcConfig) } : {}),
        Tags: lineageTags,
      },
      {
        resultPath: sfn.JsonPath.DISCARD,
        additionalIamStatements: [
          new iam.PolicyStatement({ actions: ['sagemaker:AddTags'], resources: [arn(`model/${deployedNames}`), arn(`endpoint-config/${deployedNames}`)] }),
          new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [this.modelRole.role.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } } }),
        ],
      },
    );

    // Every variant as it is, but the target's model replaced.
    const swap = new sfn.Map(this, 'Replace target model', {
      itemsPath: '$.current.ProductionVariants',
      itemSelector: { 'variant.$': '$$.Map.Item.Value', 'target.$': '$.config.targetVariant', 'modelName.$': '$.names.name' },
      resultPath: '$.variants',
      maxConcurrency: 1,
    });
    const override = new sfn.Pass(this, 'New model name', { parameters: { 'ModelName.$': '$.modelName' }, resultPath: '$.override' }).next(
      new sfn.Pass(this, 'Variant with new model', { parameters: { 'value.$': 'States.JsonMerge($.variant, $.override, false)' }, outputPath: '$.value' }),
    );
    swap.itemProcessor(
      new sfn.Choice(this, 'Target variant?')
        .when(sfn.Condition.stringEqualsJsonPath('$.variant.VariantName', '$.target'), override)
        .otherwise(new sfn.Pass(this, 'Variant unchanged', { outputPath: '$.variant' })),
    );
    const targetCheck = new sfn.Pass(this, 'Find target variant', {
      parameters: { 'present.$': 'States.ArrayContains($.names.variantNames, $.config.targetVariant)' },
      resultPath: '$.target',
    });
    const noTarget = new sfn.Fail(this, 'Target variant missing', {
      error: 'InvalidInput',
      causePath: "States.Format('targetVariant: the endpoint has no production variant {} (it has {})', $.config.targetVariant, States.JsonToString($.names.variantNames))",
    });
    const createConfig = sagemakerCall(
      'Create endpoint configuration',
      'createEndpointConfig',
      'sagemaker:CreateEndpointConfig',
      [arn(`endpoint-config/${deployedNames}`)],
      {
        'EndpointConfigName.$': '$.names.name',
        'ProductionVariants.$': '$.variants',
        // What the current configuration has beside its variants is kept as it is.
        ...(endpoint.endpointConfig.kmsKeyId ? { 'KmsKeyId.$': '$.current.KmsKeyId' } : {}),
        ...(endpoint.dataCaptureBucket ? { 'DataCaptureConfig.$': '$.current.DataCaptureConfig' } : {}),
        ...(endpoint.variants.some((variant) => variant.kind === 'shadow') ? { 'ShadowProductionVariants.$': '$.current.ShadowProductionVariants' } : {}),
        Tags: [...lineageTags, { 'Key': 'ml:previous-endpoint-config', 'Value.$': '$.endpoint.configName' }],
      },
      { resultPath: sfn.JsonPath.DISCARD },
    );
    const updateEndpoint = (stateId: string, configPath: string, guarded: boolean) =>
      sagemakerCall(
        stateId,
        'updateEndpoint',
        'sagemaker:UpdateEndpoint',
        [endpoint.endpointArn, arn('endpoint-config/*')],
        {
          EndpointName: endpoint.endpointName,
          'EndpointConfigName.$': configPath,
          ...(guarded && endpoint.deploymentConfig ? { DeploymentConfig: toApiShape(endpoint.deploymentConfig) } : {}),
          // The same retention as the endpoint's own CloudFormation updates: a new model version keeps
          // the run-time weights (and autoscaled instance counts) unless the endpoint says otherwise.
          ...(endpoint.variantRetention.retainAllVariantProperties
            ? {
              RetainAllVariantProperties: true,
              ...(endpoint.variantRetention.excludeRetainedVariantProperties.length > 0
                ? { ExcludeRetainedVariantProperties: endpoint.variantRetention.excludeRetainedVariantProperties.map((type) => ({ VariantPropertyType: type })) }
                : {}),
            }
            : {}),
        },
        { resultPath: sfn.JsonPath.DISCARD },
      );
    const update = updateEndpoint('Update endpoint', '$.names.name', true);

    // --- Wait, then report or roll back -----------------------------------------------------------
    const poll = new sfn.Wait(this, 'Endpoint updating', { time: sfn.WaitTime.secondsPath('$.config.pollSeconds') });
    const check = describeEndpoint('Check endpoint', '$.endpoint');
    const deployed = new sfn.Pass(this, 'Deployed verdict', {
      parameters: {
        result: 'deployed',
        'modelPackageArn.$': '$.config.modelPackageArn',
        'modelVersion.$': '$.package.ModelPackageVersion',
        'variant.$': '$.config.targetVariant',
        'endpointConfig.$': '$.names.name',
        'previousEndpointConfig.$': '$.current.EndpointConfigName',
        'lineage.$': '$.lineage.values',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });
    deployed.next(errors.notify('Notify deployment', `Model ${family}: version deployed`, '$.verdict')).next(done);

    const rolledBack = new sfn.Pass(this, 'Rolled back verdict', {
      parameters: {
        result: 'rolled-back',
        'reason.$': "States.Format('the endpoint went back to {} instead of {}: SageMaker rolled the update back (a guardrail alarm fired or the new version failed to start)', $.endpoint.configName, $.names.name)",
        'modelPackageArn.$': '$.config.modelPackageArn',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    rolledBack
      .next(errors.notify('Notify rollback', `Model ${family}: deployment rolled back`, '$.verdict'))
      .next(new sfn.Fail(this, 'Deployment rolled back', { error: 'DeploymentRolledBack', causePath: '$.verdict.reason' }));

    const restore = updateEndpoint('Restore previous configuration', '$.current.EndpointConfigName', false);
    const failedVerdict = new sfn.Pass(this, 'Failed verdict', {
      parameters: {
        result: 'failed',
        'reason.$': "States.Format('the endpoint became {} while deploying {}; the previous configuration {} was put back', $.endpoint.status, $.names.name, $.current.EndpointConfigName)",
        'modelPackageArn.$': '$.config.modelPackageArn',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    restore
      .next(failedVerdict)
      .next(errors.notify('Notify failed deployment', `Model ${family}: deployment failed, previous version restored`, '$.verdict'))
      .next(new sfn.Fail(this, 'Deployment failed and restored', { error: 'DeploymentFailed', causePath: '$.verdict.reason' }));

    const outcome = new sfn.Choice(this, 'Endpoint state?')
      .when(
        sfn.Condition.stringEquals('$.endpoint.status', 'InService'),
        new sfn.Choice(this, 'Serving new configuration?').when(sfn.Condition.stringEqualsJsonPath('$.endpoint.configName', '$.names.name'), deployed).otherwise(rolledBack),
      )
      .when(sfn.Condition.stringEquals('$.endpoint.status', 'Failed'), restore)
      .otherwise(poll);
    poll.next(check).next(outcome);

    const deploy = readEndpoint.next(
      new sfn.Choice(this, 'Endpoint in service?')
        .when(sfn.Condition.stringEquals('$.endpoint.status', 'InService'), readConfig.next(readServingTags).next(servingThisVersion).next(
          new sfn.Choice(this, 'Deploy?')
            .when(sfn.Condition.and(sfn.Condition.booleanEquals('$.serving.already', true), sfn.Condition.booleanEquals('$.config.force', false)), alreadyDeployed)
            .otherwise(names),
        ))
        .otherwise(notReady),
    );
    names
      .next(createModel)
      .next(targetCheck)
      .next(new sfn.Choice(this, 'Target variant exists?').when(sfn.Condition.booleanEquals('$.target.present', true), swap.next(createConfig).next(update).next(poll)).otherwise(noTarget));
    alreadyDeployed.next(errors.notify('Notify already deployed', `Model ${family}: version already deployed`, '$.verdict')).next(done);
    withLineage.next(deploy);
    withoutLineage.next(deploy);
    describePackage.next(
      new sfn.Choice(this, 'Version deployable?')
        .when(sfn.Condition.not(sfn.Condition.stringEquals('$.package.ModelPackageGroupName', group.modelPackageGroupName)), wrongFamily)
        .when(sfn.Condition.not(sfn.Condition.stringEquals('$.package.ModelApprovalStatus', 'Approved')), notApproved)
        .when(sfn.Condition.isPresent('$.package.CustomerMetadataProperties'), withLineage)
        .otherwise(withoutLineage),
    );

    // --- Input -----------------------------------------------------------------------------------
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        {
          path: '$.config.modelPackageArn',
          type: 'string',
          optional: true,
          check: {
            condition: sfn.Condition.stringMatches('$.config.modelPackageArn', `arn:*:sagemaker:*:*:model-package/${group.modelPackageGroupName.toLowerCase()}/*`),
            expectation: `a version of model package group ${group.modelPackageGroupName}`,
          },
        },
        {
          path: '$.config.targetVariant',
          type: 'string',
          ...(pipelines.length > 0
            ? {
              check: {
                condition: sfn.Condition.not(sfn.Condition.or(...pipelines.map((variant) => sfn.Condition.stringEquals('$.config.targetVariant', variant.name)))),
                expectation: `not a variant that serves a serial inference pipeline (${pipelines.map((variant) => variant.name).join(', ')})`,
              },
            }
            : {}),
        },
        { path: '$.config.rollbackToPrevious', type: 'boolean' },
        { path: '$.config.force', type: 'boolean' },
        { path: '$.config.pollSeconds', type: 'number', check: { condition: sfn.Condition.numberGreaterThanEquals('$.config.pollSeconds', 1), expectation: 'at least 1' } },
      ],
      whichVersion,
    );
    const definition = inputOverDefaults(this, this.defaults, { parameters: { deploy: { 'id.$': RUN_ID_EXPRESSION, lineageDefaults } } }).next(validated);

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Deploys approved versions of model ${family} to its endpoint`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // Blue/green with bakes can take hours on a large fleet.
      timeout: Duration.hours(12),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'sagemaker:ListModelPackages has no resource-level permissions.',
    });
    const role = this.workflow.role;
    grantPublishTo(props.notificationTopic, role);
    // Creating an endpoint configuration with a KMS key and data capture needs grants on the key.
    endpoint.encryptionKey.grant(role, 'kms:CreateGrant', 'kms:DescribeKey');
    const policy = role.grantsPolicy;
    acknowledgeWildcardResource(policy, group.modelPackageArns, 'Versions get their ARNs (…/<group>/<version>) when registered; the grant covers this group\'s versions only.');
    acknowledgeWildcardResource(policy, arn('endpoint-config/*'), 'The current endpoint configuration is named by CloudFormation or by an earlier deployment; it is read (DescribeEndpointConfig) and named in UpdateEndpoint, which also needs the endpoint ARN.');
    acknowledgeWildcardResource(policy, arn(`model/${deployedNames}`), `Each deployment creates a model named ${family}-v<version>-<id> at run time.`);
    acknowledgeWildcardResource(policy, arn(`endpoint-config/${deployedNames}`), `Each deployment creates an endpoint configuration named ${family}-v<version>-<id> at run time.`);
    Tags.of(this).add('ml:model-family', family);

    if (props.deployOnApproval ?? true) {
      const triggerRole = new ManagedPolicyRole(this, 'TriggerRole', { assumedBy: new iam.ServicePrincipal('events.amazonaws.com'), description: `Starts deployments of ${family}` });
      new events.Rule(this, 'OnApproval', {
        description: `Deploys each approved version of ${family}`,
        eventPattern: ModelDeployment.approvalPattern(group.modelPackageGroupName),
        targets: [
          new targets.SfnStateMachine(this.workflow.stateMachine, {
            role: triggerRole,
            input: events.RuleTargetInput.fromObject({ modelPackageArn: events.EventField.fromPath('$.detail.ModelPackageArn'), trigger: { source: 'approval' } }),
          }),
        ],
      });
    }
  }

  /** The EventBridge pattern of a version of the group becoming Approved. */
  public static approvalPattern(modelPackageGroupName: string): events.EventPattern {
    return {
      source: ['aws.sagemaker'],
      detailType: ['SageMaker Model Package State Change'],
      detail: { ModelPackageGroupName: [modelPackageGroupName], ModelApprovalStatus: ['Approved'] },
    };
  }
}
