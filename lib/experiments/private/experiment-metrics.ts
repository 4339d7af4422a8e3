import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** Namespace of the metrics the experiment workflows publish. */
export const EXPERIMENTS_METRICS_NAMESPACE = 'MlPlatform/Experiments';

export interface ExperimentMetric {
  readonly name: string;
  /** JSONPath of the value in the execution state. */
  readonly valuePath: string;
  readonly unit?: string;
  /** Extra dimensions beside `Model`, as name → JSONPath of the value. */
  readonly dimensionPaths?: Record<string, string>;
}

/**
 * A task state that publishes experiment metrics with the aws-sdk integration. Written as a custom
 * state rather than `CallAwsService` because the latter grants `cloudwatch:PutMetricData` on every
 * namespace; `grantPutExperimentMetrics` grants it on the experiments namespace only.
 */
export function putExperimentMetrics(scope: Construct, id: string, modelName: string, metrics: readonly ExperimentMetric[]): sfn.CustomState {
  return new sfn.CustomState(scope, id, {
    stateJson: {
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:cloudwatch:putMetricData',
      Parameters: {
        Namespace: EXPERIMENTS_METRICS_NAMESPACE,
        MetricData: metrics.map((metric) => ({
          MetricName: metric.name,
          'Value.$': metric.valuePath,
          Unit: metric.unit ?? 'None',
          Dimensions: [
            { Name: 'Model', Value: modelName },
            ...Object.entries(metric.dimensionPaths ?? {}).map(([name, path]) => ({ Name: name, 'Value.$': path })),
          ],
        })),
      },
      ResultPath: null,
    },
  });
}

/** Lets the grantee publish metrics to the experiments namespace, and no other. */
export function grantPutExperimentMetrics(grantee: iam.IGrantable): iam.Grant {
  return iam.Grant.addToPrincipal({
    grantee,
    actions: ['cloudwatch:PutMetricData'],
    resourceArns: ['*'],
    conditions: { StringEquals: { 'cloudwatch:namespace': EXPERIMENTS_METRICS_NAMESPACE } },
  });
}
