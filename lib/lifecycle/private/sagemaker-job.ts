import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from '../../core/private/nag';
import type { ManagedPolicyRole } from '../../core/managed-policy-role';

/** The SageMaker jobs the lifecycle workflows run to completion. */
export type SageMakerJobKind = 'processing' | 'training' | 'transform';

const ACTION: Record<SageMakerJobKind, string> = { processing: 'ProcessingJob', training: 'TrainingJob', transform: 'TransformJob' };

export interface SageMakerJobStateProps {
  readonly kind: SageMakerJobKind;
  /** The Create<Kind>Job request, in the API's own names; `.$` keys take JSONPath. */
  readonly parameters: Record<string, unknown>;
  /** Longest the job may run, queueing included, before the state times out. */
  readonly timeout: Duration;
  readonly resultSelector?: Record<string, unknown>;
  readonly resultPath?: string;
  readonly comment?: string;
}

/**
 * A task state that starts a SageMaker processing, training or transform job and waits for it
 * (`.sync`). There is no aws-stepfunctions-tasks construct for processing jobs, and the training and
 * transform constructs cannot express a model channel chosen at run time, a hyperparameter map taken
 * from the execution input, or a transform job's DataProcessing (input filter and join), so the
 * three are written once here with the API's own parameter names.
 */
export function sageMakerJobState(scope: Construct, id: string, props: SageMakerJobStateProps): sfn.CustomState {
  const partition = Stack.of(scope).partition;
  return new sfn.CustomState(scope, id, {
    stateJson: {
      Type: 'Task',
      Comment: props.comment,
      Resource: `arn:${partition}:states:::sagemaker:create${ACTION[props.kind]}.sync`,
      Parameters: props.parameters,
      ResultSelector: props.resultSelector,
      ResultPath: props.resultPath,
      TimeoutSeconds: props.timeout.toSeconds(),
    },
  });
}

/**
 * What a state machine needs to run `.sync` jobs of one kind named `<namePrefix>*`: create, describe,
 * stop and tag them, pass the job role to SageMaker, and manage the EventBridge rule through which
 * Step Functions learns that a job ended.
 */
export function grantRunJobs(role: ManagedPolicyRole, kind: SageMakerJobKind, namePrefix: string, jobRole: iam.IRole): void {
  const stack = Stack.of(role);
  const action = ACTION[kind];
  const resourceType = `${kind}-job`;
  // SageMaker writes job names in lower case in the job ARN.
  const jobs = `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:${resourceType}/${namePrefix.toLowerCase()}*`;
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [`sagemaker:Create${action}`, `sagemaker:Describe${action}`, `sagemaker:Stop${action}`, 'sagemaker:AddTags', 'sagemaker:ListTags'],
      resources: [jobs],
    }),
  );
  const rule = `arn:${stack.partition}:events:${stack.region}:${stack.account}:rule/StepFunctionsGetEventsForSageMaker${action}sRule`;
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'], resources: [rule] }));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [jobRole.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } } }),
  );
  acknowledgeWildcardResource(
    role.grantsPolicy,
    jobs,
    `Each execution names its ${kind} jobs at run time (${namePrefix}<run id>); the grant covers only jobs with this workflow's name prefix.`,
  );
}
