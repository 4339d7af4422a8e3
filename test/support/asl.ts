// Test helper: validates Amazon States Language (ASL) definitions with `asl-validator`, and every state machine
// of a synthesized template once scripts/support/state-machine-definitions.ts has rendered it (intrinsics
// replaced by placeholders; see that file).
//
// `asl-validator` 4 is a CommonJS package without type declarations, so it is loaded with `require`.
import { renderStateMachineDefinitions, type RenderedStateMachine } from '../../scripts/support/state-machine-definitions';

export {
  PLACEHOLDER_ACCOUNT,
  PLACEHOLDER_PARTITION,
  PLACEHOLDER_REGION,
  placeholderArn,
  placeholderRef,
  renderStateMachineDefinitions,
  type RenderedStateMachine,
} from '../../scripts/support/state-machine-definitions';

export interface AslValidationResult {
  valid: boolean;
  errors: string[];
}

export interface AslValidationOptions {
  /** Validate JSONPath / reference path syntax (default true). */
  checkPaths?: boolean;
  /** Validate that Task `Resource` values are well-formed ARNs (default true). */
  checkArn?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// asl-validator (CommonJS, `module.exports = function validator(definition, opts)`, no .d.ts)
// ---------------------------------------------------------------------------------------------------------

interface AslValidatorError {
  'Error code': string;
  Message: string;
}

type AslValidatorFn = (
  definition: object,
  opts?: { checkPaths: boolean; checkArn: boolean },
) => { isValid: boolean; errors: AslValidatorError[]; errorsText: (separator?: string) => string };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aslValidator = require('asl-validator') as AslValidatorFn;

/**
 * Validates an ASL definition. Errors are formatted as `<ERROR_CODE>: <message>`.
 * The input is not modified (asl-validator itself mutates its argument, so a deep copy is validated).
 */
export function validateAsl(definition: object, options: AslValidationOptions = {}): AslValidationResult {
  const result = aslValidator(structuredClone(definition), {
    checkPaths: options.checkPaths ?? true,
    checkArn: options.checkArn ?? true,
  });
  return {
    valid: result.isValid,
    errors: result.errors.map((e) => `${e['Error code']}: ${e.Message}`),
  };
}

/**
 * Renders all state machines of the template, asserts there is at least one and that each is valid ASL.
 * Throws (failing the test) with every offending logical id and all of its validation errors.
 * Returns the rendered definitions for further assertions.
 */
export function expectValidStateMachines(template: Record<string, any>, options: AslValidationOptions = {}): RenderedStateMachine[] {
  const rendered = renderStateMachineDefinitions(template);
  if (rendered.length === 0) {
    throw new Error('Expected the template to contain at least one AWS::StepFunctions::StateMachine, found none');
  }
  const failures = rendered
    .map(({ logicalId, definition }) => ({ logicalId, result: validateAsl(definition, options) }))
    .filter(({ result }) => !result.valid);
  if (failures.length > 0) {
    const details = failures
      .map(({ logicalId, result }) => [`  ${logicalId}:`, ...result.errors.map((e) => `    - ${e}`)].join('\n'))
      .join('\n');
    throw new Error(`${failures.length} of ${rendered.length} state machine(s) are not valid ASL:\n${details}`);
  }
  return rendered;
}
