// Regenerates the README's workflow diagrams from the state machines the blueprint synthesizes in every environment.
//
// A workflow's id is the construct path of its state machine inside its stack, after the stack's id without the
// environment prefix, and without the trailing `Resource`: the state machine
// `MlPlatform-prod-churn/ShadowComparison-churn/Workflow/Resource` (the churn family stack) is `churn/ShadowComparison-churn/Workflow`.
// Construct ids are stable (renaming one replaces resources), so ids are too, and the same workflow has the same id
// in every environment. When a workflow exists in several environments, the diagram shows the definition of the
// last one in ENVIRONMENT_NAMES that has it: prod, else staging, else dev.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, CfnElement, Stack } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { ENVIRONMENT_NAMES, loadConfig, type EnvironmentName } from '../config';
import { buildPlatform } from '../lib/stacks/platform';
import { diagramMarkers, diagramProblems, replaceDiagrams, type WorkflowDiagram } from './support/readme-diagrams';
import { renderStateMachineDefinitions } from './support/state-machine-definitions';
import { aslToMermaid } from './support/workflow-mermaid';

/** A state machine of one environment of the blueprint, as rendered ASL. */
export interface BlueprintWorkflow {
  readonly id: string;
  readonly envName: EnvironmentName;
  /** Construct path of the state machine, e.g. `MlPlatform-prod-churn/ShadowComparison-churn/Workflow/Resource`. */
  readonly path: string;
  readonly definition: object;
}

/** The id of a state machine: its path in the stack after the stack's id less `MlPlatform-<env>-`, less `/Resource`. */
export function workflowId(stateMachine: sfn.StateMachine, envName: string): string {
  const stack = Stack.of(stateMachine);
  const stackName = stack.node.id.replace(new RegExp(`^MlPlatform-${envName}-`), '');
  const inStack = stateMachine.node.path.slice(stack.node.path.length + 1).replace(/\/Resource$/, '');
  return `${stackName}/${inStack}`;
}

/** Every state machine of one environment, synthesized exactly as bin/app.ts builds it. */
export function environmentWorkflows(envName: EnvironmentName): BlueprintWorkflow[] {
  const app = new App({ context: JSON.parse(readFileSync(join(__dirname, '..', 'cdk.json'), 'utf8')).context });
  buildPlatform(app, loadConfig(envName));
  const assembly = app.synth();
  const definitions = new Map<Stack, Map<string, object>>();
  const definitionsOf = (stack: Stack) => {
    if (!definitions.has(stack)) {
      const template = assembly.getStackByName(stack.stackName).template;
      definitions.set(stack, new Map(renderStateMachineDefinitions(template).map(({ logicalId, definition }) => [logicalId, definition])));
    }
    return definitions.get(stack)!;
  };
  return app.node
    .findAll()
    .filter((construct): construct is sfn.StateMachine => construct instanceof sfn.StateMachine)
    .map((stateMachine) => {
      const stack = Stack.of(stateMachine);
      const logicalId = stack.resolve((stateMachine.node.defaultChild as CfnElement).logicalId) as string;
      const definition = definitionsOf(stack).get(logicalId);
      if (!definition) throw new Error(`${stateMachine.node.path}: no state machine ${logicalId} in the template of ${stack.stackName}`);
      return { id: workflowId(stateMachine, envName), envName, path: stateMachine.node.path, definition };
    });
}

/**
 * One workflow per id from the workflows of each environment, given in the order of ENVIRONMENT_NAMES: a later
 * environment's definition wins (prod over staging over dev). Throws when two state machines of one environment
 * have the same id.
 */
export function mergeEnvironments(workflowsByEnvironment: ReadonlyArray<readonly BlueprintWorkflow[]>): BlueprintWorkflow[] {
  const byId = new Map<string, BlueprintWorkflow>();
  for (const workflows of workflowsByEnvironment) {
    const seen = new Map<string, BlueprintWorkflow>();
    for (const workflow of workflows) {
      const other = seen.get(workflow.id);
      if (other) throw new Error(`${workflow.path} and ${other.path} both have the workflow id '${workflow.id}'`);
      seen.set(workflow.id, workflow);
      byId.set(workflow.id, workflow);
    }
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** Every workflow of the blueprint, synthesizing each environment once. */
export function blueprintWorkflows(): BlueprintWorkflow[] {
  return mergeEnvironments(ENVIRONMENT_NAMES.map(environmentWorkflows));
}

/** The diagram of each workflow. */
export function workflowDiagrams(workflows: readonly BlueprintWorkflow[]): WorkflowDiagram[] {
  return workflows.map(({ id, envName, definition }) => ({ id, envName, mermaid: aslToMermaid(definition) }));
}

if (require.main === module) {
  const path = join(__dirname, '..', 'README.md');
  const diagrams = workflowDiagrams(blueprintWorkflows());
  const readme = replaceDiagrams(readFileSync(path, 'utf8'), diagrams);
  writeFileSync(path, readme);
  const problems = diagramProblems(readme, diagrams);
  console.log(`README.md: ${diagramMarkers(readme).length} workflow diagram(s) updated`);
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) process.exitCode = 1;
}
