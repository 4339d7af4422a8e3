import { Duration, Stack, Tags } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { validateExecutionInput, type InputField } from '../core/input-validation';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { MlWorkflowOptions } from '../core/workflow-options';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { ModelPackageGroup } from './model-package-group';
import { assertRequiredProps } from '../core/private/props';

export interface ModelRetirementProps extends MlWorkflowOptions {
  readonly modelPackageGroup: ModelPackageGroup;
  /** The endpoint that serves the family: a version it serves is never retired. */
  readonly endpoint: ModelEndpoint;
  /** The bucket of the training runs, where the version's artifact lives. */
  readonly artifactsBucket: s3.IBucket;
  /**
   * Keep the version's model artifact (prod: an audit may need to reproduce a past prediction).
   * When false, the artifact the training pipeline wrote is deleted (a delete marker in the versioned bucket).
   * @default true
   */
  readonly retainArtifacts?: boolean;
}

/**
 * Retires a model version explicitly (the retirement step of the model lifecycle), as a Step
 * Functions workflow started from the console with `examples/inputs/retire-model.json`:
 *
 * 1. refuses a version of another family, and a version the endpoint still serves;
 * 2. deletes the SageMaker models and endpoint configurations its deployments created
 *    (`<family>-v<version>-<id>`);
 * 3. archives the version in the registry: Rejected, with who retired it and when;
 * 4. keeps the artifact (prod) or deletes it, and notifies.
 */
export class ModelRetirement extends Construct {
  public readonly workflow: MlWorkflow;

  constructor(scope: Construct, id: string, props: ModelRetirementProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'ModelRetirement', props, { modelPackageGroup: 'construct', endpoint: 'construct', artifactsBucket: 'object', notificationTopic: 'object', encryptionKey: 'object' });
    const { endpoint, modelPackageGroup: group } = props;
    const family = group.modelFamily;
    const stack = Stack.of(this);
    const arn = (resource: string) => `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:${resource}`;
    const deployed = `${family}-v*`;
    const errors = new FailureNotice(this, props.notificationTopic, `Retirement of a ${family} version failed`, 'Retirement failed');
    const call = (stateId: string, service: string, action: string, iamAction: string, iamResources: string[], parameters: Record<string, unknown>, rest: Partial<tasks.CallAwsServiceJsonPathProps> = {}) =>
      errors.protect(tasks.CallAwsService.jsonPath(this, stateId, { service, action, iamAction, iamResources, parameters, resultPath: sfn.JsonPath.DISCARD, ...rest }));

    const describePackage = call('Describe model version', 'sagemaker', 'describeModelPackage', 'sagemaker:DescribeModelPackage', [group.modelPackageArns], { 'ModelPackageName.$': '$.modelPackageArn' }, { resultPath: '$.package' });
    const wrongFamily = new sfn.Fail(this, 'Version of another family', {
      error: 'WrongModelFamily',
      causePath: `States.Format('{} belongs to model package group {}, not ${group.modelPackageGroupName}', $.modelPackageArn, $.package.ModelPackageGroupName)`,
    });
    const describeEndpoint = call('Describe endpoint', 'sagemaker', 'describeEndpoint', 'sagemaker:DescribeEndpoint', [endpoint.endpointArn], { EndpointName: endpoint.endpointName }, {
      resultSelector: { 'configName.$': '$.EndpointConfigName' },
      resultPath: '$.endpoint',
    });
    const describeConfig = call('Describe serving configuration', 'sagemaker', 'describeEndpointConfig', 'sagemaker:DescribeEndpointConfig', [arn('endpoint-config/*')], { 'EndpointConfigName.$': '$.endpoint.configName' }, {
      resultSelector: { 'models.$': '$.ProductionVariants[*].ModelName' },
      resultPath: '$.serving',
    });
    const listConfigs = call(
      'List the version\'s deployments',
      'sagemaker',
      'listEndpointConfigs',
      'sagemaker:ListEndpointConfigs',
      ['*'],
      { 'NameContains.$': `States.Format('${family}-v{}-', $.package.ModelPackageVersion)`, MaxResults: 100 },
      { resultSelector: { 'names.$': '$.EndpointConfigs[*].EndpointConfigName' }, resultPath: '$.deployments' },
    );
    // A deployment's model and endpoint configuration share its name; one still served blocks the retirement.
    const servedFlags = new sfn.Map(this, 'Check each deployment', {
      itemsPath: '$.deployments.names',
      itemSelector: { 'name.$': '$$.Map.Item.Value', 'serving.$': '$.serving.models', 'current.$': '$.endpoint.configName' },
      resultPath: '$.served',
      maxConcurrency: 1,
    });
    servedFlags.itemProcessor(
      new sfn.Pass(this, 'Is it served?', {
        parameters: { 'flag.$': "States.Format('{}', States.ArrayContains($.serving, $.name))" },
        outputPath: '$.flag',
      }),
    );
    const inService = new sfn.Fail(this, 'Version in service', {
      error: 'VersionInService',
      causePath: "States.Format('{} is still served by the endpoint (configuration {}); deploy another version first', $.modelPackageArn, $.endpoint.configName)",
    });
    const remove = new sfn.Map(this, 'Delete each deployment', { itemsPath: '$.deployments.names', itemSelector: { 'name.$': '$$.Map.Item.Value' }, resultPath: sfn.JsonPath.DISCARD, maxConcurrency: 5 });
    // Inside the Map, tasks retry throttling; any other error ends the Map, whose catch notifies.
    const inMap = (stateId: string, action: string, iamAction: string, resource: string, parameters: Record<string, unknown>) =>
      errors.retry(tasks.CallAwsService.jsonPath(this, stateId, { service: 'sagemaker', action, iamAction, iamResources: [resource], parameters, resultPath: sfn.JsonPath.DISCARD }));
    const deleteConfig = inMap('Delete endpoint configuration', 'deleteEndpointConfig', 'sagemaker:DeleteEndpointConfig', arn(`endpoint-config/${deployed}`), { 'EndpointConfigName.$': '$.name' });
    const deleteModel = inMap('Delete model', 'deleteModel', 'sagemaker:DeleteModel', arn(`model/${deployed}`), { 'ModelName.$': '$.name' });
    remove.addCatch(errors.entry, { errors: ['States.ALL'], resultPath: '$.error' });
    // Only names of this family's deployments are deleted, whatever NameContains matched.
    remove.itemProcessor(
      new sfn.Choice(this, 'Deployment of this family?')
        .when(sfn.Condition.stringMatches('$.name', `${family}-v*`), deleteConfig.next(deleteModel))
        .otherwise(new sfn.Pass(this, 'Not a deployment of this family')),
    );
    const archive = call('Archive version', 'sagemaker', 'updateModelPackage', 'sagemaker:UpdateModelPackage', [group.modelPackageArns], {
      'ModelPackageArn.$': '$.modelPackageArn',
      ModelApprovalStatus: 'Rejected',
      'ApprovalDescription.$': "States.Format('Retired by {}', $$.Execution.Id)",
      CustomerMetadataProperties: { 'RetiredAt.$': '$$.State.EnteredTime', 'RetiredBy.$': '$$.Execution.Id' },
    });
    const verdict = new sfn.Pass(this, 'Retired verdict', {
      parameters: {
        result: 'retired',
        'modelPackageArn.$': '$.modelPackageArn',
        'modelVersion.$': '$.package.ModelPackageVersion',
        'deploymentsDeleted.$': '$.deployments.names',
        artifact: props.retainArtifacts ?? true ? 'kept' : 'deleted',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });
    verdict.next(errors.notify('Notify retirement', `Model ${family}: version retired`, '$.verdict')).next(done);

    let afterArchive: sfn.IChainable = verdict;
    if (!(props.retainArtifacts ?? true)) {
      const artifactKey = `States.Format('${family}/runs/{}/model/{}/output/model.tar.gz', $.package.CustomerMetadataProperties.RunId, $.package.CustomerMetadataProperties.TrainingJobName)`;
      const deleteArtifact = call('Delete artifact', 's3', 'deleteObject', 's3:DeleteObject', [props.artifactsBucket.arnForObjects(`${family}/runs/*`)], { Bucket: props.artifactsBucket.bucketName, 'Key.$': artifactKey });
      afterArchive = new sfn.Choice(this, 'Artifact from a pipeline run?')
        .when(
          sfn.Condition.and(sfn.Condition.isPresent('$.package.CustomerMetadataProperties.RunId'), sfn.Condition.isPresent('$.package.CustomerMetadataProperties.TrainingJobName')),
          deleteArtifact.next(verdict),
        )
        .otherwise(verdict);
    }
    archive.next(afterArchive);

    describePackage.next(
      new sfn.Choice(this, 'Version of this family?')
        .when(sfn.Condition.stringEquals('$.package.ModelPackageGroupName', group.modelPackageGroupName), describeEndpoint)
        .otherwise(wrongFamily),
    );
    const fold = new sfn.Pass(this, 'Any deployment served?', { parameters: { 'any.$': "States.ArrayContains($.served, 'true')" }, resultPath: '$.served' });
    describeEndpoint.next(describeConfig).next(listConfigs).next(servedFlags).next(fold).next(
      new sfn.Choice(this, 'Still served?')
        .when(sfn.Condition.booleanEquals('$.served.any', true), inService)
        .otherwise(remove.next(archive)),
    );

    const definition = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        {
          path: '$.modelPackageArn',
          type: 'string',
          check: {
            condition: sfn.Condition.stringMatches('$.modelPackageArn', `arn:*:sagemaker:*:*:model-package/${group.modelPackageGroupName.toLowerCase()}/*`),
            expectation: `a version of model package group ${group.modelPackageGroupName}`,
          },
        },
      ],
      describePackage,
    );

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Retires versions of model ${family}`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: Duration.hours(1),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'sagemaker:ListEndpointConfigs has no resource-level permissions.',
    });
    const policy = this.workflow.role.grantsPolicy;
    grantPublishTo(props.notificationTopic, this.workflow.role);
    acknowledgeWildcardResource(policy, group.modelPackageArns, 'Versions get their ARNs (…/<group>/<version>) when registered; the grant covers this group\'s versions only.');
    acknowledgeWildcardResource(policy, arn('endpoint-config/*'), 'The serving endpoint configuration is named by CloudFormation or a deployment; it is only read, to refuse retiring a version in service.');
    acknowledgeWildcardResource(policy, arn(`model/${deployed}`), `Deployments name their models ${family}-v<version>-<id> at run time; only those are deleted.`);
    acknowledgeWildcardResource(policy, arn(`endpoint-config/${deployed}`), `Deployments name their endpoint configurations ${family}-v<version>-<id> at run time; only those are deleted.`);
    if (!(props.retainArtifacts ?? true)) {
      acknowledgeWildcardResource(policy, props.artifactsBucket.arnForObjects(`${family}/runs/*`), 'A version\'s artifact lies under the run that trained it, named at run time; only this family\'s runs can be deleted.');
    }
    Tags.of(this).add('ml:model-family', family);
  }
}
