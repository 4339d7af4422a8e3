import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { InputField } from '../../core/input-validation';

/** Execution-input fields the guardrail check reads, validated by each workflow's first states. */
export const GUARDRAIL_INPUT_FIELDS: readonly InputField[] = [
  {
    path: '$.config.metricPeriodSeconds',
    type: 'number',
    check: { condition: sfn.Condition.numberGreaterThanEquals('$.config.metricPeriodSeconds', 60), expectation: 'a multiple of 60, at least 60' },
  },
  { path: '$.config.maxErrorRate', type: 'number', check: { condition: sfn.Condition.numberLessThanEquals('$.config.maxErrorRate', 1), expectation: 'between 0 and 1' } },
  { path: '$.config.maxLatencyMicros', type: 'number' },
  { path: '$.config.latencyStatistic', type: 'string' },
  { path: '$.config.minInvocations', type: 'number' },
];

/**
 * Execution-state layout shared by the experiment workflows:
 * - `$.config`: the merged input (variants, limits, `metricPeriodSeconds`);
 * - `$.window.start`: when the observed window began (an ISO timestamp);
 * - `$.guardrails`: what was read (`raw`) and the figures compared (`metrics`);
 * - `$.verdict`: `{ result, reason }` once a check decides.
 */
export interface GuardrailCheckProps {
  /** Endpoint whose variants are compared. */
  readonly endpointName: string;
  /** JSONPath of the variant that sets the bar (champion, or the production variant in shadow mode). */
  readonly baselineVariantPath: string;
  /** JSONPath of the variant under test (challenger, or shadow). */
  readonly candidateVariantPath: string;
  /** Where to go when the candidate is within its guardrails. */
  readonly pass: sfn.IChainable;
  /** Where to go when a guardrail is broken; `$.verdict.reason` says which. */
  readonly fail: sfn.IChainable;
  /** Where to go when the candidate served fewer than `minInvocations` requests in the window. */
  readonly insufficientData: sfn.IChainable;
  /** Retry and catch applied to the metric read. */
  readonly configureTask: (task: tasks.CallAwsService) => void;
}

/** Marks the latency statistic, which each execution chooses (`$.config.latencyStatistic`, e.g. p99). */
const LATENCY = 'latency';

/** Metric queries, in the order their results are read back. */
const QUERIES = [
  ['baselineInvocations', 'baseline', 'Invocations', 'Sum'],
  ['baselineErrorRate', 'baseline', 'Invocation5XXErrors', 'Average'],
  ['baselineLatency', 'baseline', 'ModelLatency', LATENCY],
  ['candidateInvocations', 'candidate', 'Invocations', 'Sum'],
  ['candidateErrorRate', 'candidate', 'Invocation5XXErrors', 'Average'],
  ['candidateLatency', 'candidate', 'ModelLatency', LATENCY],
] as const;

/**
 * Reads both variants' SageMaker metrics over the observed window and compares the candidate with
 * its guardrails. SageMaker publishes one Invocation5XXErrors sample per request (0 or 1), so the
 * Average statistic is the error rate. The candidate fails a guardrail only when it is both above
 * the configured limit and worse than the baseline, so a bad hour for both variants does not blame
 * the candidate. Latency is compared on the statistic the execution names (p99 by default). All figures are chosen in CloudWatch (statistics) or compared in Choice states;
 * nothing is computed in a Lambda function, so the check runs wherever Step Functions does.
 */
export function guardrailCheck(scope: Construct, id: string, props: GuardrailCheckProps): sfn.IChainable {
  const container = new Construct(scope, id);
  const variantPath = { baseline: props.baselineVariantPath, candidate: props.candidateVariantPath };
  const read = tasks.CallAwsService.jsonPath(container, `${id}: Read variant metrics`, {
    service: 'cloudwatch',
    action: 'getMetricData',
    iamResources: ['*'],
    parameters: {
      'StartTime.$': '$.window.start',
      'EndTime.$': '$$.State.EnteredTime',
      ScanBy: 'TimestampDescending',
      MetricDataQueries: QUERIES.map(([queryId, variant, metricName, stat]) => ({
        Id: queryId,
        ReturnData: true,
        MetricStat: {
          Metric: {
            Namespace: 'AWS/SageMaker',
            MetricName: metricName,
            Dimensions: [
              { Name: 'EndpointName', Value: props.endpointName },
              { Name: 'VariantName', 'Value.$': variantPath[variant] },
            ],
          },
          'Period.$': '$.config.metricPeriodSeconds',
          ...(stat === LATENCY ? { 'Stat.$': '$.config.latencyStatistic' } : { Stat: stat }),
        },
      })),
    },
    // Each query's values (newest first), selected by query id: a filter always yields a list of
    // matches, here exactly one, so the values sit at index 0 of what is selected.
    resultSelector: Object.fromEntries(QUERIES.map(([queryId]) => [`${queryId}.$`, `$.MetricDataResults[?(@.Id == '${queryId}')].Values`])),
    resultPath: '$.guardrails.raw',
  });
  props.configureTask(read);

  const unwrap = new sfn.Pass(container, `${id}: Unwrap values`, {
    parameters: Object.fromEntries(QUERIES.map(([queryId]) => [`${queryId}.$`, `States.ArrayGetItem($.guardrails.raw.${queryId}, 0)`])),
    resultPath: '$.guardrails.values',
  });
  const count = new sfn.Pass(container, `${id}: Count datapoints`, {
    parameters: Object.fromEntries(QUERIES.map(([queryId]) => [`${queryId}.$`, `States.ArrayLength($.guardrails.values.${queryId})`])),
    resultPath: '$.guardrails.counts',
  });
  const pick = new sfn.Pass(container, `${id}: Pick newest figures`, {
    parameters: Object.fromEntries(QUERIES.map(([queryId]) => [`${queryId}.$`, `States.ArrayGetItem($.guardrails.values.${queryId}, 0)`])),
    resultPath: '$.guardrails.metrics',
  });
  const hasData = sfn.Condition.and(
    ...QUERIES.map(([queryId]) => sfn.Condition.numberGreaterThan(`$.guardrails.counts.${queryId}`, 0)),
  );
  const insufficient = new sfn.Pass(container, `${id}: Not enough data`, {
    parameters: {
      result: 'insufficient-data',
      'reason.$': "States.Format('the window has no datapoints for one of the variants (candidate invocations datapoints: {}), so the variants cannot be compared', $.guardrails.counts.candidateInvocations)",
    },
    resultPath: '$.verdict',
  }).next(props.insufficientData);

  const failWith = (stateId: string, format: string, ...paths: string[]) =>
    new sfn.Pass(container, `${id}: ${stateId}`, {
      parameters: { result: 'fail', 'reason.$': `States.Format('${format}', ${paths.join(', ')})` },
      resultPath: '$.verdict',
    }).next(props.fail);
  const passed = new sfn.Pass(container, `${id}: Within guardrails`, {
    parameters: {
      result: 'pass',
      'reason.$':
        "States.Format('candidate error rate {} and {} latency {} us are within the limits or no worse than the baseline ({} and {} us)', $.guardrails.metrics.candidateErrorRate, $.config.latencyStatistic, $.guardrails.metrics.candidateLatency, $.guardrails.metrics.baselineErrorRate, $.guardrails.metrics.baselineLatency)",
    },
    resultPath: '$.verdict',
  }).next(props.pass);

  const m = (name: string) => `$.guardrails.metrics.${name}`;
  const compare = new sfn.Choice(container, `${id}: Compare with guardrails`)
    .when(
      sfn.Condition.numberLessThanJsonPath(m('candidateInvocations'), '$.config.minInvocations'),
      new sfn.Pass(container, `${id}: Too little traffic`, {
        parameters: {
          result: 'insufficient-data',
          'reason.$': "States.Format('the candidate served {} requests in the window; at least {} are needed to judge it', $.guardrails.metrics.candidateInvocations, $.config.minInvocations)",
        },
        resultPath: '$.verdict',
      }).next(props.insufficientData),
    )
    .when(
      sfn.Condition.and(
        sfn.Condition.numberGreaterThanJsonPath(m('candidateErrorRate'), '$.config.maxErrorRate'),
        sfn.Condition.numberGreaterThanJsonPath(m('candidateErrorRate'), m('baselineErrorRate')),
      ),
      failWith(
        'Error rate too high',
        'candidate 5xx error rate {} is above the limit {} and above the baseline {}',
        m('candidateErrorRate'),
        '$.config.maxErrorRate',
        m('baselineErrorRate'),
      ),
    )
    .when(
      sfn.Condition.and(
        sfn.Condition.numberGreaterThanJsonPath(m('candidateLatency'), '$.config.maxLatencyMicros'),
        sfn.Condition.numberGreaterThanJsonPath(m('candidateLatency'), m('baselineLatency')),
      ),
      failWith(
        'Latency too high',
        'candidate {} model latency {} us is above the limit {} us and above the baseline {} us',
        '$.config.latencyStatistic',
        m('candidateLatency'),
        '$.config.maxLatencyMicros',
        m('baselineLatency'),
      ),
    )
    .otherwise(passed);

  return read.next(unwrap).next(count).next(new sfn.Choice(container, `${id}: Enough data?`).when(hasData, pick.next(compare)).otherwise(insufficient));
}
