import { Duration } from 'aws-cdk-lib';
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
  'Sns.ThrottledException',
  'Lambda.TooManyRequestsException',
];

/**
 * The error discipline of an experiment workflow: every task retries throttling with jittered
 * backoff, and any other error is caught into one notice to the topic followed by a Fail state that
 * keeps the original error and cause.
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
    const notice = this.retry(
      new tasks.SnsPublish(scope, 'Notify failure', { topic, subject, message: sfn.TaskInput.fromJsonPathAt('$.error'), resultPath: sfn.JsonPath.DISCARD }),
    );
    this.entry = notice.next(new sfn.Fail(scope, failStateId, { errorPath: '$.error.Error', causePath: '$.error.Cause' }));
  }

  /** Retries throttling on the task. */
  public retry<T extends sfn.TaskStateBase | sfn.CustomState>(task: T): T {
    task.addRetry({ errors: THROTTLING_ERRORS, interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
    return task;
  }

  /** Retries throttling and catches every other error into the failure notice. */
  public protect<T extends sfn.TaskStateBase | sfn.CustomState>(task: T): T {
    this.retry(task);
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
