// Every construct the package exports, called as a JavaScript caller may call it: with no props, with
// empty props, and with each required prop of the wrong type. The required props and their types are
// read from the TypeScript declarations (lib/index.ts), so a construct added later is covered without
// editing this test. Each call must fail with one error that names the construct's path and every
// problem prop, never with a crash from inside the construct or CloudFormation's words.
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ts from 'typescript';
import * as lib from '../../../lib';

const ROOT = join(__dirname, '..', '..', '..');

type Kind = 'string' | 'number' | 'boolean' | 'array' | 'construct' | 'object';

interface ConstructProps {
  readonly name: string;
  /** Whether the props parameter may be left out. */
  readonly optional: boolean;
  readonly required: ReadonlyArray<readonly [string, Kind]>;
}

/** The exported construct classes and their required props, from the type checker. */
function exportedConstructs(): ConstructProps[] {
  const configFile = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);
  const program = ts.createProgram([join(ROOT, 'lib', 'index.ts')], { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();
  const index = checker.getSymbolAtLocation(program.getSourceFile(join(ROOT, 'lib', 'index.ts'))!)!;
  const extendsConstruct = (type: ts.Type): boolean =>
    (type.getSymbol()?.flags ?? 0) & ts.SymbolFlags.Class
      ? checker.getBaseTypes(type as ts.InterfaceType).some((base) => base.getSymbol()?.name === 'Construct' || extendsConstruct(base))
      : false;
  const kindOf = (type: ts.Type): Kind => {
    if (type.flags & ts.TypeFlags.StringLike || (type.isUnion() && type.types.every((member) => member.flags & ts.TypeFlags.StringLike))) return 'string';
    if (type.flags & ts.TypeFlags.NumberLike) return 'number';
    if (type.flags & ts.TypeFlags.BooleanLike) return 'boolean';
    if (checker.isArrayType(type)) return 'array';
    return extendsConstruct(type) ? 'construct' : 'object';
  };
  const found: ConstructProps[] = [];
  for (const exported of checker.getExportsOfModule(index)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(symbol.flags & ts.SymbolFlags.Class) || !extendsConstruct(checker.getDeclaredTypeOfSymbol(symbol))) continue;
    const signature = checker.getTypeOfSymbol(symbol).getConstructSignatures()[0];
    const parameter = signature?.parameters[2];
    if (parameter === undefined) continue;
    const declaration = parameter.valueDeclaration as ts.ParameterDeclaration;
    const propsType = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(parameter, declaration));
    const required = checker
      .getPropertiesOfType(propsType)
      .filter((property) => !(property.flags & ts.SymbolFlags.Optional))
      .map((property) => [property.name, kindOf(checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, declaration)))] as const);
    found.push({ name: symbol.name, optional: declaration.questionToken !== undefined || declaration.initializer !== undefined, required });
  }
  return found;
}

const CONSTRUCTS = exportedConstructs();
const WITH_REQUIRED = CONSTRUCTS.filter((construct) => construct.required.length > 0);

type AnyConstruct = new (scope: unknown, id: string, props?: unknown) => unknown;
const classOf = (name: string): AnyConstruct => (lib as unknown as Record<string, AnyConstruct>)[name];

function errorOf(name: string, props: unknown): string {
  const stack = new Stack(new App(), 'Js', { env: { account: '123456789012', region: 'us-east-1' } });
  const Class = classOf(name);
  try {
    new Class(stack, 'It', props);
  } catch (error) {
    return (error as Error).message;
  }
  return '(no error)';
}

/** A value of the wrong type for a prop of this kind. */
const wrongValue = (kind: Kind): unknown => (kind === 'number' ? 'many' : 42);

test('the type checker finds the exported constructs and their required props', () => {
  expect(CONSTRUCTS.length).toBeGreaterThan(30);
  expect(WITH_REQUIRED.find((construct) => construct.name === 'BatchInference')?.required).toEqual(expect.arrayContaining([['instanceType', 'string'], ['modelPackageGroup', 'construct']]));
  expect(WITH_REQUIRED.find((construct) => construct.name === 'DataKey')).toBeUndefined();
});

describe.each(WITH_REQUIRED.map((construct) => [construct.name, construct] as const))('%s called from JavaScript', (name, construct) => {
  test('with empty props: one error naming the construct and every required prop', () => {
    const message = errorOf(name, {});
    expect(message.startsWith(`Js/It (${name}): invalid props:\n`)).toBe(true);
    for (const [prop] of construct.required) expect(message).toContain(`\n  - ${prop}: is required`);
  });

  test('with every required prop of the wrong type: each one named with what it must be', () => {
    const message = errorOf(name, Object.fromEntries(construct.required.map(([prop, kind]) => [prop, wrongValue(kind)])));
    expect(message.startsWith(`Js/It (${name}): invalid props:\n`)).toBe(true);
    for (const [prop] of construct.required) {
      expect({ prop, named: message.includes(`\n  - ${prop}: must be`) }).toEqual({ prop, named: true });
    }
  });

  if (!construct.optional) {
    test('with no props at all: props is required', () => {
      expect(errorOf(name, undefined)).toBe(`Js/It (${name}): invalid props:\n  - props: is required`);
    });
  }
});
