import { Duration } from 'aws-cdk-lib';
import type { MlWorkflowOptions } from '../core/workflow-options';

/** Options every experiment workflow takes. */
export interface ExperimentWorkflowOptions extends MlWorkflowOptions {}

/** The guardrails a candidate variant is held to against its baseline (see `guardrailCheck`). */
export interface VariantGuardrailOptions {
  /**
   * The candidate's 5xx error rate (0-1) may not exceed this unless the baseline's does too.
   * @default 0.01
   */
  readonly maxErrorRate?: number;
  /**
   * The candidate's model latency (at `latencyStatistic`) may not exceed this unless the baseline's does too.
   * @default Duration.seconds(1)
   */
  readonly maxLatency?: Duration;
  /**
   * The CloudWatch statistic of ModelLatency compared.
   * @default 'p99'
   */
  readonly latencyStatistic?: string;
  /**
   * Fewest requests the candidate must serve in a window to be judged.
   * @default 100
   */
  readonly minInvocations?: number;
}

/** The guardrail fields of a workflow's defaults, as the execution input names them. */
export function guardrailDefaults(options: VariantGuardrailOptions): Record<string, number | string> {
  return {
    maxErrorRate: options.maxErrorRate ?? 0.01,
    maxLatencyMicros: (options.maxLatency ?? Duration.seconds(1)).toMilliseconds() * 1000,
    latencyStatistic: options.latencyStatistic ?? 'p99',
    minInvocations: options.minInvocations ?? 100,
  };
}

/** Problems with guardrail options, one line each, naming the prop. */
export function guardrailProblems(options: VariantGuardrailOptions): string[] {
  const problems: string[] = [];
  if (options.maxErrorRate !== undefined && !(options.maxErrorRate >= 0 && options.maxErrorRate <= 1)) {
    problems.push(`maxErrorRate: must be a rate from 0 to 1; got ${options.maxErrorRate}`);
  }
  if (options.minInvocations !== undefined && !(Number.isInteger(options.minInvocations) && options.minInvocations >= 1)) {
    problems.push(`minInvocations: must be a whole number >= 1; got ${options.minInvocations}`);
  }
  if (options.latencyStatistic !== undefined && !/^(Average|Maximum|Minimum|p\d{1,2}(\.\d+)?)$/.test(options.latencyStatistic)) {
    problems.push(`latencyStatistic: must be Average, Minimum, Maximum or a percentile such as p99; got '${options.latencyStatistic}'`);
  }
  return problems;
}
