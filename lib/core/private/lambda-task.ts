import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';

/** Lambda's own errors that a later attempt gets past. */
const LAMBDA_SERVICE_ERRORS = ['Lambda.TooManyRequestsException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException'];

export interface WorkflowLambdaTaskOptions {
  readonly comment: string;
  readonly lambdaFunction: lambda.IFunction;
  readonly payload: Record<string, unknown>;
  /** Where the kept fields go in the state; DISCARD to keep none. */
  readonly resultPath: string;
  /** The fields of the function's answer that later states read. */
  readonly fields: readonly string[];
  /** The function's own errors for bad input: the same call would fail again, so they are not retried. */
  readonly permanentErrors: readonly string[];
  /** Where every error goes after the retries (the error is at `$.error`). */
  readonly catchTo: sfn.IChainable;
}

/**
 * A Lambda task of a workflow whose function is safe to call again with the same input: its input errors are not
 * retried, Lambda's own errors are retried with jittered backoff, any other error (the services the function calls
 * failing after the SDK's retries) three times, and then the error is caught.
 */
export function workflowLambdaTask(scope: Construct, id: string, options: WorkflowLambdaTaskOptions): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, id, {
    comment: options.comment,
    lambdaFunction: options.lambdaFunction,
    payload: sfn.TaskInput.fromObject(options.payload),
    resultSelector: Object.fromEntries(options.fields.map((field) => [`${field}.$`, `$.Payload.${field}`])),
    resultPath: options.resultPath,
    retryOnServiceExceptions: false,
  });
  task.addRetry({ errors: [...options.permanentErrors], maxAttempts: 0 });
  task.addRetry({ errors: LAMBDA_SERVICE_ERRORS, interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
  task.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(10), backoffRate: 2, maxAttempts: 3, jitterStrategy: sfn.JitterType.FULL });
  task.addCatch(options.catchTo, { errors: ['States.ALL'], resultPath: '$.error' });
  return task;
}
