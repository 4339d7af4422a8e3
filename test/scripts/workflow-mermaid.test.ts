import { Stack } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import fc from 'fast-check';
import { validateExecutionInput } from '../../lib/core/input-validation';
import {
  aslToMermaid,
  describeCondition,
  escapeLabel,
  findInputValidationChains,
  type AslStates,
} from '../../scripts/support/workflow-mermaid';

/** Lines of the diagram, without indentation, to assert exact lines wherever they sit. */
function lines(mermaid: string): string[] {
  return mermaid.split('\n').map((line) => line.trim());
}

/** The ASL of a chain built with the real Step Functions constructs. */
function definitionOf(build: (stack: Stack) => sfn.IChainable): AslStates {
  const stack = new Stack();
  const graph = new sfn.StateGraph(sfn.Chain.start(build(stack)).startState, 'test');
  return stack.resolve(graph.toGraphJson()) as AslStates;
}

const TASK = 'arn:aws:states:::lambda:invoke';

describe('aslToMermaid', () => {
  const everyType: AslStates = {
    StartAt: 'Prepare',
    States: {
      Prepare: { Type: 'Pass', Next: 'Call model' },
      'Call model': {
        Type: 'Task',
        Resource: TASK,
        Retry: [
          { ErrorEquals: ['Lambda.TooManyRequestsException'], MaxAttempts: 6 },
          { ErrorEquals: ['States.Timeout', 'States.TaskFailed'] },
        ],
        Catch: [{ ErrorEquals: ['ModelError', 'States.Timeout'], Next: 'Give up' }],
        Next: 'Ready?',
      },
      'Ready?': {
        Type: 'Choice',
        Choices: [
          { Variable: '$.status', StringEquals: 'InService', Next: 'Fan out' },
          { Variable: '$.attempts', NumericGreaterThanEqualsPath: '$.config.maxAttempts', Next: 'Give up' },
        ],
        Default: 'Pause',
      },
      Pause: { Type: 'Wait', SecondsPath: '$.config.pollSeconds', Next: 'Call model' },
      'Fan out': {
        Type: 'Parallel',
        Branches: [
          { StartAt: 'Left', States: { Left: { Type: 'Pass', End: true } } },
          { StartAt: 'Right', States: { Right: { Type: 'Wait', Seconds: 30, End: true } } },
        ],
        Next: 'Each chunk',
      },
      'Each chunk': {
        Type: 'Map',
        MaxConcurrency: 5,
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Load chunk',
          States: { 'Load chunk': { Type: 'Task', Resource: TASK, End: true } },
        },
        Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Give up' }],
        Next: 'Done',
      },
      Done: { Type: 'Succeed' },
      'Give up': { Type: 'Fail', Error: 'WorkflowFailed', Cause: 'see the logs' },
    },
  };

  test('draws every state with the shape of its type, from a start node', () => {
    expect(lines(aslToMermaid(everyType))).toEqual(
      expect.arrayContaining([
        'flowchart TD',
        'start(("start"))',
        's_Prepare("Prepare")',
        's_Call_model["Call model<br/>retry ×6 on Lambda.TooManyRequestsException<br/>retry ×3 on 2 errors"]',
        's_Ready{"Ready?"}',
        's_Pause{{"Pause<br/>wait config.pollSeconds s"}}',
        's_Fan_out[["Fan out<br/>parallel, 2 branches"]]',
        's_Each_chunk[["Each chunk<br/>distributed map, at most 5 at once"]]',
        's_Done(["Done"]):::succeed',
        's_Give_up(["Give up<br/>WorkflowFailed"]):::fail',
        'start --> s_Prepare',
      ]),
    );
  });

  test('draws Next as a solid arrow, each Choice rule with its condition, and Default', () => {
    expect(lines(aslToMermaid(everyType))).toEqual(
      expect.arrayContaining([
        's_Prepare --> s_Call_model',
        's_Ready -->|"status = \'InService\'"| s_Fan_out',
        's_Ready -->|"attempts #gt;= config.maxAttempts"| s_Give_up',
        's_Ready -->|"default"| s_Pause',
        's_Pause --> s_Call_model',
        's_Each_chunk --> s_Done',
      ]),
    );
  });

  test('draws Catch as a dashed arrow labelled with the errors it catches', () => {
    const diagram = lines(aslToMermaid(everyType));
    expect(diagram).toContain('s_Call_model -.->|"ModelError, States.Timeout"| s_Give_up');
    expect(diagram).toContain('s_Each_chunk -.->|"States.ALL"| s_Give_up');
    expect(diagram.filter((line) => line.includes('-.->'))).toHaveLength(2);
  });

  test('draws a Map item processor and each Parallel branch as a subgraph', () => {
    const diagram = aslToMermaid(everyType);
    expect(diagram).toContain(
      [
        '  subgraph s_Each_chunk_items["Each chunk: each item"]',
        '    s_Load_chunk["Load chunk"]',
        '  end',
      ].join('\n'),
    );
    expect(diagram).toContain(['  subgraph s_Fan_out_branch_1["Fan out: branch 1"]', '    s_Left("Left")', '  end'].join('\n'));
    expect(diagram).toContain(['  subgraph s_Fan_out_branch_2["Fan out: branch 2"]', '    s_Right{{"Right<br/>wait 30 s"}}', '  end'].join('\n'));
    expect(lines(diagram)).toEqual(
      expect.arrayContaining(['s_Each_chunk ==>|"each item"| s_Load_chunk', 's_Fan_out ==>|"branch 1"| s_Left', 's_Fan_out ==>|"branch 2"| s_Right']),
    );
    // Inside a subgraph, End ends the item or the branch, not the workflow.
    expect(diagram).not.toContain('end_of_workflow');
  });

  test('reads the legacy Iterator of an inline Map and ends End states at an end node', () => {
    const diagram = aslToMermaid({
      StartAt: 'Each',
      States: { Each: { Type: 'Map', Iterator: { StartAt: 'Item', States: { Item: { Type: 'Pass', End: true } } }, End: true } },
    });
    expect(diagram).toContain('  subgraph s_Each_items["Each: each item"]\n    s_Item("Item")\n  end');
    expect(lines(diagram)).toEqual(
      expect.arrayContaining(['s_Each[["Each<br/>map"]]', 's_Each ==>|"each item"| s_Item', 's_Each --> end_of_workflow', 'end_of_workflow(("end"))']),
    );
  });

  test('lists the states in the order the flow reaches them, whatever the order of States', () => {
    const reversed: AslStates = { ...everyType, States: Object.fromEntries(Object.entries(everyType.States).reverse()) };
    expect(aslToMermaid(reversed)).toBe(aslToMermaid(everyType));
    const nodes = lines(aslToMermaid(everyType)).filter((line) => /^s_\w+[[({]/.test(line)).map((line) => line.split(/[[({]/)[0]);
    expect(nodes.slice(0, 4)).toEqual(['s_Prepare', 's_Call_model', 's_Ready', 's_Give_up']);
  });

  test('still draws states that nothing reaches, after the reachable ones', () => {
    const diagram = lines(aslToMermaid({ StartAt: 'A', States: { A: { Type: 'Succeed' }, Orphan: { Type: 'Pass', Next: 'A' } } }));
    expect(diagram.indexOf('s_Orphan("Orphan")')).toBeGreaterThan(diagram.indexOf('s_A(["A"]):::succeed'));
    expect(diagram).toContain('s_Orphan --> s_A');
  });

  test('names the state and field of a transition to a state that does not exist', () => {
    expect(() => aslToMermaid({ StartAt: 'A', States: { A: { Type: 'Pass', Next: 'Nowhere' } } })).toThrow(
      'definition.States["A"].Next names "Nowhere", which is not a state of this scope',
    );
    expect(() =>
      aslToMermaid({ StartAt: 'M', States: { M: { Type: 'Map', ItemProcessor: { StartAt: 'X', States: {} }, End: true } } }),
    ).toThrow('definition.States["M"].ItemProcessor.StartAt names "X", which is not a state of this scope');
    expect(() => aslToMermaid({ States: {} })).toThrow('definition: expected an object with StartAt (a state name) and States');
  });
});

describe('state names in the diagram', () => {
  const awkward: AslStates = {
    StartAt: 'Check "model" (v1.2): ok?',
    States: {
      'Check "model" (v1.2): ok?': {
        Type: 'Choice',
        Choices: [{ Variable: '$.a|b', StringEquals: 'x"y', Next: 'end' }],
        Default: 'Check-model-v1-2-ok',
      },
      'Check-model-v1-2-ok': { Type: 'Pass', Next: 'end' },
      end: { Type: 'Pass', Next: '#1 <b>&`tick`' },
      '#1 <b>&`tick`': { Type: 'Succeed' },
    },
  };

  test('become ids of letters, digits and _ only, unique, and never a Mermaid keyword', () => {
    const diagram = lines(aslToMermaid(awkward));
    expect(diagram).toEqual(
      expect.arrayContaining([
        's_Check_model_v1_2_ok{"Check #quot;model#quot; (v1.2): ok?"}',
        's_Check_model_v1_2_ok_2("Check-model-v1-2-ok")',
        's_end("end")',
        's_1_b_tick(["#35;1 #lt;b#gt;#amp;#96;tick#96;"]):::succeed',
      ]),
    );
    const ids = diagram.filter((line) => line.startsWith('s_') && !line.includes('-->')).map((line) => line.split(/[[({]/)[0]);
    expect(new Set(ids).size).toBe(4);
    ids.forEach((id) => expect(id).toMatch(/^[A-Za-z0-9_]+$/));
  });

  test('are escaped in edge labels too, so a quote or a pipe cannot end the label', () => {
    expect(lines(aslToMermaid(awkward))).toContain('s_Check_model_v1_2_ok -->|"a#124;b = \'x#quot;y\'"| s_end');
  });

  test('escape every character Mermaid or HTML would read, and line breaks', () => {
    expect(escapeLabel('a "b" #c <d> & `e` | f\ng')).toBe('a #quot;b#quot; #35;c #lt;d#gt; #amp; #96;e#96; #124; f g');
  });

  test('never produce an id outside [A-Za-z0-9_], and every state is declared once (property)', () => {
    const name = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', 'B', '1', ' ', '.', ':', '(', ')', '"', '#', '|', '-', 'é', '<') });
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), (names, picks) => {
        // A chain of Pass states, each optionally jumping to another, ending in Succeed.
        const states: Record<string, object> = {};
        names.forEach((stateName, index) => {
          states[stateName] = index === names.length - 1 ? { Type: 'Succeed' } : { Type: 'Pass', Next: names[(index + 1 + (picks[index] % 2)) % names.length] };
        });
        const diagram = lines(aslToMermaid({ StartAt: names[0], States: states } as unknown as AslStates));
        const declared = diagram.filter((line) => /^s_\w*[[({]/.test(line));
        expect(declared).toHaveLength(names.length);
        const ids = declared.map((line) => line.split(/[[({]/)[0]);
        expect(new Set(ids).size).toBe(names.length);
        for (const line of diagram.filter((l) => l.includes('-->'))) {
          expect(line).toMatch(/^[A-Za-z0-9_]+ -->(\|"[^"]*"\|)? [A-Za-z0-9_]+$/);
        }
      }),
    );
  });
});

describe('Choice conditions', () => {
  test('read as short text: comparisons, paths, types, presence, null', () => {
    expect(describeCondition({ Variable: '$.loop.count', NumericGreaterThan: 0 })).toBe('loop.count > 0');
    expect(describeCondition({ Variable: '$.loop.index', NumericLessThanPath: '$.loop.count' })).toBe('loop.index < loop.count');
    expect(describeCondition({ Variable: '$.alarms.firing', BooleanEquals: true })).toBe('alarms.firing = true');
    expect(describeCondition({ Variable: '$.config.trafficSteps', IsPresent: true })).toBe('config.trafficSteps present');
    expect(describeCondition({ Variable: '$.analysis.test', IsNull: false })).toBe('analysis.test is not null');
    expect(describeCondition({ Not: { Variable: '$.config.prefix', IsString: true } })).toBe('config.prefix is not a string');
    expect(describeCondition({ Not: { Variable: '$.config.prefix', IsPresent: true } })).toBe('config.prefix absent');
    expect(describeCondition({ Variable: '$.bake', NumericGreaterThanEquals: 60 })).toBe('bake >= 60');
    expect(describeCondition({ Variable: '$.bake', NumericLessThanEqualsPath: '$.limit' })).toBe('bake <= limit');
    expect(describeCondition({ Variable: '$.at', TimestampEquals: '2026-11-26T00:00:00Z' })).toBe("at = '2026-11-26T00:00:00Z'");
    expect(describeCondition({ Variable: '$.key', StringMatches: 'models/*.tar.gz' })).toBe("key matches 'models/*.tar.gz'");
    expect(describeCondition({ Variable: '$', IsPresent: true })).toBe('input present');
  });

  test('drop a presence test that only guards a comparison of the same field', () => {
    const rule = { And: [{ Variable: '$.abTest.decision', IsPresent: true }, { Variable: '$.abTest.decision', StringEquals: 'a-wins' }] };
    expect(describeCondition(rule)).toBe("abTest.decision = 'a-wins'");
  });

  test('read an Or of equalities on one field as a list of values, and nest combinations in parentheses', () => {
    const oneOf = { Or: [{ Variable: '$.status', StringEquals: 'Failed' }, { Variable: '$.status', StringEquals: 'OutOfService' }] };
    expect(describeCondition(oneOf)).toBe("status = 'Failed' or 'OutOfService'");
    expect(describeCondition({ Not: oneOf })).toBe("not (status = 'Failed' or 'OutOfService')");
    expect(describeCondition({ And: [{ Variable: '$.a', NumericGreaterThan: 1 }, oneOf] })).toBe("a > 1 and (status = 'Failed' or 'OutOfService')");
  });

  test('prefer the rule Comment, and read a JSONata condition as its expression', () => {
    expect(describeCondition({ Variable: '$.x', NumericEquals: 1, Comment: 'first attempt' })).toBe('first attempt');
    expect(describeCondition({ Condition: '{% $states.input.score > 0.5 %}' })).toBe('$states.input.score > 0.5');
  });

  test('shorten a long condition: short paths, then the first operand and how many more, then a cut', () => {
    const longPaths = { Variable: '$.guardrails.metrics.candidateInvocations', NumericLessThanPath: '$.config.limits.minInvocations' };
    expect(describeCondition(longPaths)).toBe('metrics.candidateInvocations < limits.minInvocations');
    const many = { And: ['baselineInvocations', 'candidateInvocations', 'baselineErrorRate', 'candidateErrorRate'].map((field) => ({ Variable: `$.guardrails.counts.${field}`, NumericGreaterThan: 0 })) };
    expect(describeCondition(many)).toBe('counts.baselineInvocations > 0 and 3 more');
    const huge = { Variable: `$.${'x'.repeat(40)}.${'y'.repeat(40)}`, IsPresent: true };
    const text = describeCondition(huge);
    expect(text).toHaveLength(64);
    expect(text.endsWith('…')).toBe(true);
  });
});

describe('the input checks of validateExecutionInput', () => {
  const fields = [
    { path: '$.config.variant', type: 'string' as const },
    { path: '$.config.bakeSeconds', type: 'number' as const, check: { condition: sfn.Condition.numberGreaterThanEquals('$.config.bakeSeconds', 1), expectation: 'at least 1' } },
    { path: '$.config.note', type: 'string' as const, optional: true },
  ];
  const workflow = (stack: Stack) =>
    sfn.Chain.start(new sfn.Pass(stack, 'Load defaults')).next(
      validateExecutionInput(stack, 'Validate', fields, new sfn.Pass(stack, 'Work').next(new sfn.Succeed(stack, 'Done'))),
    );

  test('are found as one chain from the first field to the state after the last', () => {
    const definition = definitionOf(workflow);
    const [chain, ...others] = findInputValidationChains(definition);
    expect(others).toEqual([]);
    expect(chain.fields).toEqual(['config.variant', 'config.bakeSeconds', 'config.note']);
    expect(chain.entry).toBe('Check config.variant');
    expect(chain.exit).toBe('Work');
    expect([...chain.states].sort()).toEqual(
      [
        'Check config.variant', 'Check config.variant type', 'Invalid config.variant',
        'Check config.bakeSeconds', 'Check config.bakeSeconds type', 'Check config.bakeSeconds value', 'Invalid config.bakeSeconds',
        'Check config.note', 'Check config.note type', 'Invalid config.note',
      ].sort(),
    );
    // Every state the helper generated is in the chain, and nothing else.
    expect(Object.keys(definition.States).filter((name) => !chain.states.has(name)).sort()).toEqual(['Done', 'Load defaults', 'Work']);
  });

  test('are drawn as one "Validate input" node with one edge to one InvalidInput failure and one edge onward', () => {
    const diagram = lines(aslToMermaid(definitionOf(workflow)));
    expect(diagram).toEqual(
      expect.arrayContaining([
        'validate_input["Validate input"]',
        'invalid_input(["InvalidInput"]):::fail',
        's_Load_defaults --> validate_input',
        'validate_input -->|"valid"| s_Work',
        'validate_input -->|"invalid"| invalid_input',
      ]),
    );
    expect(diagram.filter((line) => line.startsWith('validate_input '))).toHaveLength(2);
    expect(diagram.join('\n')).not.toMatch(/Check config|Invalid config/);
  });

  test('share one InvalidInput failure between two chains, and leave other InvalidInput failures alone', () => {
    const diagram = lines(
      aslToMermaid(
        definitionOf((stack) =>
          validateExecutionInput(stack, 'First', [fields[0]],
            new sfn.Choice(stack, 'Steps given?')
              .when(sfn.Condition.isPresent('$.steps'), validateExecutionInput(stack, 'Second', [fields[1]], new sfn.Succeed(stack, 'Done')))
              .otherwise(new sfn.Fail(stack, 'Missing steps', { error: 'InvalidInput', cause: 'steps: must be present' })),
          ),
        ),
      ),
    );
    expect(diagram.filter((line) => line.endsWith('["Validate input"]'))).toEqual(['validate_input["Validate input"]', 'validate_input_2["Validate input"]']);
    expect(diagram.filter((line) => line.includes('(["InvalidInput"])'))).toHaveLength(1);
    expect(diagram).toEqual(expect.arrayContaining(['validate_input_2 -->|"invalid"| invalid_input', 's_Missing_steps(["Missing steps<br/>InvalidInput"]):::fail']));
  });

  test('stay as they are when another state jumps into the middle of them', () => {
    const definition = definitionOf(workflow);
    const States = { ...definition.States, Retry: { Type: 'Pass', Next: 'Check config.bakeSeconds type' }, Work: { Type: 'Pass', Next: 'Retry' } };
    const diagram = aslToMermaid({ ...definition, States });
    expect(findInputValidationChains({ ...definition, States })).toEqual([]);
    expect(diagram).not.toContain('Validate input');
    expect(diagram).toContain('s_Check_config_bakeSeconds_type{"Check config.bakeSeconds type"}');
  });

  test('are recognised by their structure, not by names alone', () => {
    const lookalike: AslStates = {
      StartAt: 'Check stock',
      States: {
        'Check stock': { Type: 'Choice', Choices: [{ Variable: '$.stock', NumericGreaterThan: 0, Next: 'Check stock type' }], Default: 'Invalid stock' },
        'Check stock type': { Type: 'Choice', Choices: [{ Not: { Variable: '$.stock', IsNumeric: true }, Next: 'Invalid stock' }], Default: 'Ship' },
        'Invalid stock': { Type: 'Fail', Error: 'InvalidInput' },
        Ship: { Type: 'Succeed' },
      },
    };
    expect(findInputValidationChains(lookalike)).toEqual([]);
    const wrongError = definitionOf(workflow);
    const States = { ...wrongError.States, 'Invalid config.variant': { Type: 'Fail', Error: 'Other' } };
    expect(findInputValidationChains({ ...wrongError, States }).map((chain) => chain.fields)).toEqual([['config.bakeSeconds', 'config.note']]);
  });

  test('are all drawn when the collapse is turned off', () => {
    const diagram = aslToMermaid(definitionOf(workflow), { collapseInputValidation: false });
    expect(diagram).not.toContain('Validate input');
    expect(lines(diagram)).toEqual(
      expect.arrayContaining([
        's_Check_config_variant -->|"config.variant present"| s_Check_config_variant_type',
        's_Check_config_variant -->|"default"| s_Invalid_config_variant',
        's_Check_config_bakeSeconds_value -->|"not config.bakeSeconds #gt;= 1"| s_Invalid_config_bakeSeconds',
        's_Invalid_config_variant(["Invalid config.variant<br/>InvalidInput"]):::fail',
      ]),
    );
  });
});
