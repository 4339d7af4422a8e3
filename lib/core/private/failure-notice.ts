import { Duration, Stack } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** Errors worth retrying with backoff: throttling by the services the workflows call. */
const THROTTLING_ERRORS = [
  'SageMaker.ThrottlingException',
  'CloudWatch.ThrottlingException',
  'CloudWatch.LimitExceededException',
  'DynamoDb.ThrottlingException',
  'DynamoDb.ProvisionedThroughputExceededException',
  'S3.SlowDown',
  'Sns.ThrottledException',
  'Lambda.TooManyRequestsException',
];

/**
 * Errors of creating a SageMaker job that a later attempt can get past: the account's instance quota
 * for the type is taken by other jobs (`ResourceLimitExceeded`; both spellings are seen). Retried with a
 * long backoff. A job that starts and then fails (a CapacityError among its FailureReasons) ends as
 * `States.TaskFailed`, which is not retried: the run fails and notifies with the reason.
 */
export const SAGEMAKER_CAPACITY_ERRORS = ['SageMaker.ResourceLimitExceededException', 'SageMaker.ResourceLimitExceeded'];

/** The Step Functions console page of the running execution. */
export function executionConsoleUrlExpression(scope: Construct): string {
  const region = Stack.of(scope).region;
  return `States.Format('https://${region}.console.aws.amazon.com/states/home?region=${region}#/v2/executions/details/{}', $$.Execution.Id)`;
}

/**
 * The error discipline of a workflow: every task retries throttling with jittered backoff, and any
 * other error is caught into one notice to the topic (the error, its cause, the execution and its
 * console link) followed by a Fail state that keeps the original error and cause.
 */
export class FailureNotice {
  /** Notify, then fail: the target of every catch. */
  public readonly entry: sfn.IChainable;

  constructor(
    private readonly scope: Construct,
    private readonly topic: sns.ITopic,
    subject: string,
    failStateId: string,
  ) {
    const describe = new sfn.Pass(scope, 'Describe failure', {
      parameters: {
        'error.$': '$.error.Error',
        'cause.$': '$.error.Cause',
        'execution.$': '$$.Execution.Id',
        'console.$': executionConsoleUrlExpression(scope),
      },
      resultPath: '$.failure',
    });
    const notice = this.retry(
      new tasks.SnsPublish(scope, 'Notify failure', { topic, subject, message: sfn.TaskInput.fromJsonPathAt('$.failure'), resultPath: sfn.JsonPath.DISCARD }),
    );
    this.entry = describe.next(notice).next(new sfn.Fail(scope, failStateId, { errorPath: '$.error.Error', causePath: '$.error.Cause' }));
  }

  /** Retries throttling on the task (and, for SageMaker jobs, capacity errors with a longer backoff). */
  public retry<T extends sfn.TaskStateBase | sfn.CustomState>(task: T, options: { capacity?: boolean } = {}): T {
    task.addRetry({ errors: THROTTLING_ERRORS, interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
    if (options.capacity) {
      task.addRetry({ errors: SAGEMAKER_CAPACITY_ERRORS, interval: Duration.minutes(1), backoffRate: 2, maxAttempts: 5, maxDelay: Duration.minutes(15), jitterStrategy: sfn.JitterType.FULL });
    }
    return task;
  }

  /** Retries throttling and catches every other error into the failure notice. */
  public protect<T extends sfn.TaskStateBase | sfn.CustomState>(task: T, options: { capacity?: boolean } = {}): T {
    this.retry(task, options);
    task.addCatch(this.entry, { errors: ['States.ALL'], resultPath: '$.error' });
    return task;
  }

  /** A protected notification to the topic with the JSON at `messagePath`. */
  public notify(id: string, subject: string, messagePath: string): tasks.SnsPublish {
    return this.protect(
      new tasks.SnsPublish(this.scope, id, { topic: this.topic, subject, message: sfn.TaskInput.fromJsonPathAt(messagePath), resultPath: sfn.JsonPath.DISCARD }),
    );
  }
}
