import { RemovalPolicy, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';

// Checks of construct props that the type checker makes for a TypeScript caller, made again at run time
// for a JavaScript one: a required prop that is missing, a value of the wrong type, a discriminant
// (`capacity.kind`) that is none of the allowed values. Each problem names the prop by its path, and a
// construct reports all of them at once with invalidProps.

/** What a prop must be. `construct`: any construct (a ModelEndpoint, a FeatureGroup...). */
export type PropType = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'construct';

const describe = (value: unknown): string => {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
};

/** Whether `value` is of `type` (a token counts as one). */
export function isType(value: unknown, type: PropType): boolean {
  // A token stands for a value of its declared type.
  if (Token.isUnresolved(value)) return true;
  switch (type) {
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'construct':
      return Construct.isConstruct(value);
    default:
      return typeof value === type;
  }
}

/**
 * The problems of `value` as a prop of type `type` at `path`: none when it is one, or when it is
 * optional and missing.
 */
export function checkPropType(value: unknown, path: string, type: PropType, options: { readonly optional?: boolean } = {}): string[] {
  if (value === undefined) return options.optional ? [] : [`${path}: is required`];
  return isType(value, type) ? [] : [`${path}: must be ${type === 'array' || type === 'object' ? `an ${type}` : type === 'construct' ? 'a construct' : `a ${type}`}; got ${describe(value)}`];
}

/** The problems of a discriminant: `path` must hold one of `allowed`. */
export function checkOneOf(value: unknown, path: string, allowed: readonly string[]): string[] {
  if (value === undefined) return [`${path}: is required (one of ${allowed.map((item) => `'${item}'`).join(', ')})`];
  return typeof value === 'string' && allowed.includes(value) ? [] : [`${path}: must be one of ${allowed.map((item) => `'${item}'`).join(', ')}; got ${describe(value)}`];
}

/** The error a construct throws for its props' problems, every one on its own line. */
export function invalidProps(where: string, problems: readonly string[]): Error {
  return new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);
}

/** The removal-policy props of a construct: `removalPolicy`, and the `retain` flag it replaces. */
export interface RemovalProps {
  readonly removalPolicy?: RemovalPolicy;
  /** @deprecated use removalPolicy */
  readonly retain?: boolean;
}

/**
 * The removal policy a construct applies: `removalPolicy`, else `retain: false` as DESTROY, else RETAIN.
 * Throws, naming both, when the two are given and disagree.
 */
export function resolveRemovalPolicy(where: string, props: RemovalProps): RemovalPolicy {
  const { removalPolicy, retain } = props;
  const problems = [
    ...(removalPolicy === undefined ? [] : checkOneOf(removalPolicy, 'removalPolicy', Object.values(RemovalPolicy))),
    ...checkPropType(retain, 'retain', 'boolean', { optional: true }),
  ];
  if (problems.length === 0 && removalPolicy !== undefined && retain !== undefined && (removalPolicy !== RemovalPolicy.DESTROY) !== retain) {
    problems.push(`removalPolicy and retain disagree (${removalPolicy}, retain: ${retain}); give removalPolicy only (retain is deprecated)`);
  }
  if (problems.length > 0) throw invalidProps(where, problems);
  return removalPolicy ?? (retain === false ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN);
}

/** Whether a removal policy keeps the resource (anything but DESTROY). */
export const keeps = (policy: RemovalPolicy): boolean => policy !== RemovalPolicy.DESTROY;

/** The props a construct requires, each with its type. */
export type RequiredProps = Readonly<Record<string, PropType>>;

/** The problems of `props` against the required ones: `props: is required` when there are none at all. */
export function requiredPropProblems(props: unknown, required: RequiredProps): string[] {
  const shape = checkPropType(props, 'props', 'object');
  if (shape.length > 0) return shape;
  const values = props as Record<string, unknown>;
  return Object.entries(required).flatMap(([key, type]) => checkPropType(values[key], key, type));
}

/**
 * Throws `invalidProps`, naming the construct at `path`, when a required prop is missing or of the wrong
 * type: what a JavaScript caller gets instead of a crash from deep inside the construct. The construct's
 * own rules run after, on props of the right shape.
 */
export function assertRequiredProps(path: string, name: string, props: unknown, required: RequiredProps): void {
  const problems = requiredPropProblems(props, required);
  if (problems.length > 0) throw invalidProps(`${path} (${name})`, problems);
}
