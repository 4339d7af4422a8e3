import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** The JSON type an execution input field must have. */
export type InputFieldType = 'string' | 'number' | 'boolean' | 'timestamp';

export interface InputField {
  /** JSONPath of the field, e.g. `$.championVariant`. */
  readonly path: string;
  readonly type: InputFieldType;
  /**
   * Accept a missing field (the workflow fills a default).
   * @default false
   */
  readonly optional?: boolean;
  /** Extra condition the value must meet, with the message shown when it does not. */
  readonly check?: { readonly condition: sfn.Condition; readonly expectation: string };
}

const TYPE_CONDITION: Record<InputFieldType, (path: string) => sfn.Condition> = {
  string: (path) => sfn.Condition.isString(path),
  number: (path) => sfn.Condition.isNumeric(path),
  boolean: (path) => sfn.Condition.isBoolean(path),
  timestamp: (path) => sfn.Condition.isTimestamp(path),
};

/**
 * Validates an execution's input explicitly, field by field, before any work starts. Each bad field
 * ends the execution in a `Fail` state with error `InvalidInput` and a cause that names the field
 * and what was expected, e.g. `trafficSteps: must be present and an array of steps`.
 *
 * Returns a chain whose end continues to `next` when every field is valid.
 */
export function validateExecutionInput(scope: Construct, id: string, fields: readonly InputField[], next: sfn.IChainable): sfn.IChainable {
  const container = new Construct(scope, id);
  let chain: sfn.IChainable = next;
  // Built from the last field to the first, so that each check falls through to the next one.
  // Presence, type and extra check are separate Choice states: a comparison on a missing or
  // mistyped field is a runtime error in Step Functions, so each test only runs once the one
  // before it has passed.
  for (let index = fields.length - 1; index >= 0; index--) {
    const field = fields[index];
    const name = field.path.replace(/^\$\./, '');
    const expectation = `must be ${field.optional ? 'absent or ' : ''}a ${field.type}${field.check ? ` and ${field.check.expectation}` : ''}`;
    const fail = new sfn.Fail(container, `Invalid ${name}`, { error: 'InvalidInput', cause: `${name}: ${expectation}` });
    let afterType = chain;
    if (field.check) {
      afterType = new sfn.Choice(container, `Check ${name} value`).when(sfn.Condition.not(field.check.condition), fail).otherwise(chain);
    }
    const typeCheck = new sfn.Choice(container, `Check ${name} type`)
      .when(sfn.Condition.not(TYPE_CONDITION[field.type](field.path)), fail)
      .otherwise(afterType);
    const presence = new sfn.Choice(container, `Check ${name}`).when(sfn.Condition.isPresent(field.path), typeCheck);
    chain = field.optional ? presence.otherwise(chain) : presence.otherwise(fail);
  }
  return chain;
}

/**
 * A short id for one execution (12 hex characters taken from UUIDs), for naming what the run
 * creates within SageMaker's 63-character limits.
 */
export const RUN_ID_EXPRESSION = "States.Format('{}{}', States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0), States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 1))";

export interface InputOverDefaultsOptions {
  /**
   * Fields set beside `config`, as Pass state parameters (keys ending in `.$` take JSONPath or intrinsics).
   * @default - none
   */
  readonly parameters?: Record<string, unknown>;
  /**
   * The expression that builds `config` from `$.defaults` and the execution input.
   * @default - the input merged over the defaults
   */
  readonly configExpression?: string;
}

/**
 * The first two states of a console-startable workflow: load the defaults taken from the config, then
 * merge the execution input over them into `$.config` (with any further fields), ready for
 * `validateExecutionInput`.
 */
export function inputOverDefaults(scope: Construct, defaults: Record<string, unknown>, options: InputOverDefaultsOptions = {}): sfn.Chain {
  return new sfn.Pass(scope, 'Load defaults', { result: sfn.Result.fromObject({ defaults: { ...defaults } }), resultPath: '$' }).next(
    new sfn.Pass(scope, 'Merge input over defaults', {
      parameters: { 'config.$': options.configExpression ?? 'States.JsonMerge($.defaults, $$.Execution.Input, false)', ...options.parameters },
    }),
  );
}
