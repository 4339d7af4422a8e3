import { CreateStateMachineCommand, DescribeExecutionCommand, GetExecutionHistoryCommand, SFNClient, StartExecutionCommand, StopExecutionCommand, type HistoryEvent } from '@aws-sdk/client-sfn';
import type { MotoServer } from './moto';
import { sdkTestConfig } from './moto';
import { renderStateMachineDefinitions } from './asl';

/**
 * Runs synthesized state machines in moto's Step Functions engine. moto executes aws-sdk:
 * integrations and optimized SNS/DynamoDB/SQS tasks against its own fakes; it cannot run
 * `.sync` SageMaker tasks or Lambda functions without Docker.
 */

/** Renders one state machine of a template, then swaps placeholders for the names of real moto resources. */
export function renderForMoto(template: Record<string, any>, stateMachineLogicalId: RegExp, substitutions: Record<string, string>): string {
  const rendered = renderStateMachineDefinitions(template).filter((machine) => stateMachineLogicalId.test(machine.logicalId));
  if (rendered.length !== 1) {
    throw new Error(`expected one state machine matching ${stateMachineLogicalId}; found ${rendered.map((m) => m.logicalId).join(', ') || 'none'}`);
  }
  let text = JSON.stringify(rendered[0].definition);
  for (const [placeholder, real] of Object.entries(substitutions)) {
    text = text.split(placeholder).join(real);
  }
  return text;
}

export interface ExecutionResult {
  readonly status: string;
  readonly output?: any;
  readonly error?: string;
  readonly cause?: string;
  /** Names of the states entered, in order. */
  readonly states: string[];
  /** The output of each state the execution left (the last one, for a state entered more than once). */
  readonly stateOutputs: Record<string, any>;
  /** The execution's history (its first 1000 events): what each task was called with, its failures and retries. */
  readonly events: HistoryEvent[];
}

export async function enableStepFunctionsExecution(moto: MotoServer): Promise<void> {
  await moto.post('/moto-api/config', { stepfunctions: { execute_state_machine: true } });
}

/** A rendered definition that starts at `state` instead: runs the part of a workflow after states moto cannot run (`.sync` jobs). */
export function startingAt(definition: string, state: string): string {
  const parsed = JSON.parse(definition);
  if (!(state in parsed.States)) throw new Error(`no state '${state}' in the definition`);
  return JSON.stringify({ ...parsed, StartAt: state });
}

/** Creates the state machine in moto, starts one execution and waits for it to end (or to enter `stopAt`, then stops it). */
export async function runExecution(moto: MotoServer, definition: string, input: unknown, timeoutMs = 60_000, stopAt?: string): Promise<ExecutionResult> {
  const sfn = new SFNClient(sdkTestConfig(moto.endpoint));
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: `test-${Date.now()}-${Math.floor(Math.random() * 1e6)}`,
      definition,
      roleArn: 'arn:aws:iam::123456789012:role/stepfunctions',
    }),
  );
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify(input) }));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (stopAt) {
      const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
      if ((history.events ?? []).some((event) => event.stateEnteredEventDetails?.name === stopAt)) {
        await sfn.send(new StopExecutionCommand({ executionArn, cause: `test reached ${stopAt}` }));
      }
    }
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (execution.status !== 'RUNNING') {
      const history = await sfn.send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }));
      if (process.env.DEBUG_SFN) console.log(JSON.stringify(history.events?.slice(-4)).slice(0, 3000));
      const states = (history.events ?? []).flatMap((event) => (event.stateEnteredEventDetails?.name ? [event.stateEnteredEventDetails.name] : []));
      const stateOutputs: Record<string, any> = {};
      for (const event of history.events ?? []) {
        const exited = event.stateExitedEventDetails;
        if (exited?.name && exited.output !== undefined) stateOutputs[exited.name] = JSON.parse(exited.output);
      }
      return {
        status: execution.status ?? 'UNKNOWN',
        output: execution.output ? JSON.parse(execution.output) : undefined,
        error: execution.error,
        cause: execution.cause,
        states,
        stateOutputs,
        events: history.events ?? [],
      };
    }
    if (Date.now() > deadline) throw new Error(`execution still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
