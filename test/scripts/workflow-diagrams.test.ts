import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENVIRONMENT_NAMES } from '../../config';
import {
  DIAGRAM_END,
  diagramBlock,
  diagramMarkers,
  diagramProblems,
  replaceDiagrams,
  type WorkflowDiagram,
} from '../../scripts/support/readme-diagrams';
import { environmentWorkflows, mergeEnvironments, workflowDiagrams, type BlueprintWorkflow } from '../../scripts/workflow-diagrams';

const README = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('npm run diagrams', () => {
  // Each environment is synthesized once for the whole file.
  let byEnvironment: BlueprintWorkflow[][];
  let workflows: BlueprintWorkflow[];
  let diagrams: WorkflowDiagram[];
  beforeAll(() => {
    byEnvironment = ENVIRONMENT_NAMES.map(environmentWorkflows);
    workflows = mergeEnvironments(byEnvironment);
    diagrams = workflowDiagrams(workflows);
  });

  test('the README shows every workflow of the blueprint as generated now (run `npm run diagrams` when it does not)', () => {
    expect(diagramProblems(README, diagrams)).toEqual([]);
  });

  test('finds every state machine of every environment, with ids free of the environment', () => {
    const ids = (envName: string) => byEnvironment[ENVIRONMENT_NAMES.indexOf(envName as never)].map((workflow) => workflow.id);
    expect(ids('dev')).toEqual(expect.arrayContaining(['Features/Ingestion/BatchWorkflow']));
    expect(ids('staging')).toEqual(expect.arrayContaining(['Features/Ingestion/BatchWorkflow', 'churn/Promotion-churn/Workflow', 'churn/AbTest-churn/Workflow']));
    expect(ids('prod')).toEqual(expect.arrayContaining(['Features/Ingestion/BatchWorkflow', 'churn/ShadowComparison-churn/Workflow']));
    for (const workflow of byEnvironment.flat()) {
      // The id is the path without the environment's stack prefix and without the state machine's Resource.
      expect([`MlPlatform-${workflow.envName}-${workflow.id}/Resource`, `MlPlatform-${workflow.envName}-${workflow.id}`]).toContain(workflow.path);
    }
  });

  test('draws a workflow from prod when prod has it, else from the environment that has it', () => {
    const envOf = Object.fromEntries(workflows.map((workflow) => [workflow.id, workflow.envName]));
    expect(envOf).toMatchObject({
      'Features/Ingestion/BatchWorkflow': 'prod',
      'churn/ShadowComparison-churn/Workflow': 'prod',
      'churn/Promotion-churn/Workflow': 'staging',
      'churn/AbTest-churn/Workflow': 'staging',
    });
    // The batch workflow's concurrency differs by environment (config batchConcurrency: dev 2, staging 5, prod 20).
    const ingestion = diagrams.find((diagram) => diagram.id === 'Features/Ingestion/BatchWorkflow')!;
    expect(ingestion.mermaid).toContain('  s_Ingest_chunks[["Ingest chunks<br/>distributed map, at most 20 at once"]]\n');
  });

  test('draws the synthesized definitions: the input checks collapsed, the real states and transitions kept', () => {
    const promotion = diagrams.find((diagram) => diagram.id === 'churn/Promotion-churn/Workflow')!.mermaid;
    expect(promotion).toContain('  s_Merge_input_over_defaults --> s_Steps_given\n');
    expect(promotion).toContain('  s_Steps_given -->|"config.trafficSteps present"| validate_input\n');
    expect(promotion).toContain('  validate_input -->|"valid"| s_Count_steps\n');
    expect(promotion).toContain('  s_Bake{{"Bake<br/>wait config.bakeSeconds s"}}\n');
    expect(promotion).toContain('  s_Shift_traffic -.->|"States.ALL"| s_Describe_failure\n');
    expect(promotion).not.toContain('Check config.');
  });

  test('a merge keeps the last environment\'s definition and refuses two workflows with one id', () => {
    const workflow = (envName: 'dev' | 'prod', id: string, path = `MlPlatform-${envName}-${id}/Resource`): BlueprintWorkflow => ({ id, envName, path, definition: { envName } });
    const merged = mergeEnvironments([[workflow('dev', 'A/X'), workflow('dev', 'A/Y')], [workflow('prod', 'A/X')]]);
    expect(merged.map(({ id, envName }) => [id, envName])).toEqual([['A/X', 'prod'], ['A/Y', 'dev']]);
    expect(() => mergeEnvironments([[workflow('dev', 'A/X'), workflow('dev', 'A/X', 'Other/Resource')]])).toThrow(
      "Other/Resource and MlPlatform-dev-A/X/Resource both have the workflow id 'A/X'",
    );
  });
});

describe('the README diagram blocks', () => {
  const diagrams: WorkflowDiagram[] = [
    { id: 'churn/Promotion-churn/Workflow', envName: 'staging', mermaid: 'flowchart TD\n  a --> b\n' },
    { id: 'Features/Ingestion/BatchWorkflow', envName: 'prod', mermaid: 'flowchart TD\n  c --> d\n' },
  ];
  const empty = (id: string) => `<!-- workflow-diagram: ${id} -->\n${DIAGRAM_END}`;
  const source = `# Title\n\n## Promotion\n\n${empty('churn/Promotion-churn/Workflow')}\n\n## Features\n\n${empty('Features/Ingestion/BatchWorkflow')}\n`;
  const current = replaceDiagrams(source, diagrams);

  test('are filled between their markers with a note and a mermaid block, and nothing else changes', () => {
    expect(current).toBe(
      [
        '# Title',
        '',
        '## Promotion',
        '',
        '<!-- workflow-diagram: churn/Promotion-churn/Workflow -->',
        '<!-- generated by `npm run diagrams` from the staging blueprint; do not edit -->',
        '```mermaid',
        'flowchart TD',
        '  a --> b',
        '```',
        DIAGRAM_END,
        '',
        '## Features',
        '',
        '<!-- workflow-diagram: Features/Ingestion/BatchWorkflow -->',
        diagramBlock(diagrams[1]).trim(),
        DIAGRAM_END,
        '',
      ].join('\n'),
    );
    expect(replaceDiagrams(current, diagrams)).toBe(current);
    expect(diagramMarkers(current)).toEqual(['churn/Promotion-churn/Workflow', 'Features/Ingestion/BatchWorkflow']);
    expect(diagramProblems(current, diagrams)).toEqual([]);
  });

  test('that differ from the generated diagram are reported as stale', () => {
    const edited = current.replace('  a --> b', '  a --> c');
    expect(diagramProblems(edited, diagrams)).toEqual(["README.md: the diagram of 'churn/Promotion-churn/Workflow' is stale; run `npm run diagrams`"]);
    expect(diagramProblems(source, diagrams)).toHaveLength(2);
  });

  test('that name an unknown workflow are reported, and refused by the generator', () => {
    const unknown = current.replace('workflow-diagram: Features/Ingestion/BatchWorkflow', 'workflow-diagram: Features/Ingestion/Gone');
    expect(diagramProblems(unknown, diagrams)).toEqual([
      "README.md names the workflow 'Features/Ingestion/Gone', which the blueprint does not have (known: Features/Ingestion/BatchWorkflow, churn/Promotion-churn/Workflow); fix the marker, then run `npm run diagrams`",
      "README.md has no diagram of the workflow 'Features/Ingestion/BatchWorkflow'; add <!-- workflow-diagram: Features/Ingestion/BatchWorkflow --> <!-- /workflow-diagram --> to the section that documents it, then run `npm run diagrams`",
    ]);
    expect(() => replaceDiagrams(unknown, diagrams)).toThrow("README.md: no workflow of the blueprint has the id 'Features/Ingestion/Gone'");
  });

  test('missing for a workflow of the blueprint are reported, so every new workflow gets a diagram', () => {
    const withNewWorkflow = [...diagrams, { id: 'Training/Pipeline-churn/Workflow', envName: 'prod', mermaid: 'flowchart TD\n' }];
    expect(diagramProblems(current, withNewWorkflow)).toEqual([
      "README.md has no diagram of the workflow 'Training/Pipeline-churn/Workflow'; add <!-- workflow-diagram: Training/Pipeline-churn/Workflow --> <!-- /workflow-diagram --> to the section that documents it, then run `npm run diagrams`",
    ]);
  });

  test('without an end marker are reported with the workflow named', () => {
    const unclosed = source.replace(`Workflow -->\n${DIAGRAM_END}`, 'Workflow -->\n');
    expect(diagramProblems(unclosed, diagrams)).toEqual([
      "README.md: the marker for workflow 'churn/Promotion-churn/Workflow' has no <!-- /workflow-diagram --> after it; close it, then run `npm run diagrams`",
    ]);
    expect(() => replaceDiagrams(unclosed, diagrams)).toThrow("the marker for workflow 'churn/Promotion-churn/Workflow' has no");
  });
});
