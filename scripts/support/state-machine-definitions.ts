// Renders the Step Functions state machines of a synthesized CloudFormation template into concrete Amazon
// States Language (ASL) JSON. Used by the tests (test/support/asl.ts validates the result with `asl-validator`)
// and by `npm run diagrams` (scripts/workflow-diagrams.ts draws it).
//
// CDK emits `DefinitionString` as an `Fn::Join` whose parts contain intrinsics (`Ref`, `Fn::GetAtt`, ...).
// Most of those sit *inside* JSON string literals of the joined text, so every intrinsic is replaced by a
// placeholder that contains no quote, backslash or `${`, and that is still valid where it appears:
//
//   Fn::GetAtt [X, Arn] (or any attribute ending in "Arn") -> arn:aws:states:us-east-1:123456789012:placeholder:X
//   Fn::GetAtt [X, Attr]                                   -> placeholder-X-Attr
//   Ref X (resource whose Ref returns an ARN, e.g. SNS)    -> arn:aws:states:us-east-1:123456789012:placeholder:X
//   Ref X (any other resource or parameter)                -> placeholder-X
//   Ref AWS::Partition / AWS::Region / AWS::AccountId ...  -> aws / us-east-1 / 123456789012 ...
//   Fn::ImportValue name                                   -> placeholder-import-name
//   Fn::GetStackOutput { OutputName }                      -> placeholder-output-OutputName (an ARN placeholder for ...Arn outputs)
//
// `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::Sub`, `Fn::FindInMap` (against the template's Mappings),
// `Fn::Base64` and `Fn::GetAZs` are evaluated. Anything else (`Fn::If`, `AWS::NoValue`, ...) throws an
// error naming the state machine's logical id, the intrinsic and where it was found.

export const PLACEHOLDER_PARTITION = 'aws';
export const PLACEHOLDER_REGION = 'us-east-1';
export const PLACEHOLDER_ACCOUNT = '123456789012';

/** The ARN-looking placeholder used for `Fn::GetAtt [logicalId, Arn]` and for ARN-returning `Ref`s. */
export function placeholderArn(logicalId: string): string {
  return `arn:${PLACEHOLDER_PARTITION}:states:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:placeholder:${sanitize(logicalId)}`;
}

/** The placeholder used for a `Ref` to a resource or parameter whose Ref is not an ARN. */
export function placeholderRef(logicalId: string): string {
  return `placeholder-${sanitize(logicalId)}`;
}

export interface RenderedStateMachine {
  logicalId: string;
  definition: object;
}

// ---------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------

/** Types whose `Ref` return value is an ARN (so it may legitimately appear as a Task `Resource`). */
const REF_RETURNS_ARN = new Set([
  'AWS::Batch::JobDefinition',
  'AWS::Batch::JobQueue',
  'AWS::ECS::TaskDefinition',
  'AWS::ElasticLoadBalancingV2::Listener',
  'AWS::ElasticLoadBalancingV2::LoadBalancer',
  'AWS::ElasticLoadBalancingV2::TargetGroup',
  'AWS::IAM::ManagedPolicy',
  'AWS::Lambda::Alias',
  'AWS::Lambda::Version',
  'AWS::SageMaker::Endpoint',
  'AWS::SageMaker::EndpointConfig',
  'AWS::SageMaker::Model',
  'AWS::SecretsManager::Secret',
  'AWS::SNS::Topic',
  'AWS::StepFunctions::Activity',
  'AWS::StepFunctions::StateMachine',
]);

const PSEUDO_PARAMETERS: Record<string, string> = {
  'AWS::Partition': PLACEHOLDER_PARTITION,
  'AWS::Region': PLACEHOLDER_REGION,
  'AWS::AccountId': PLACEHOLDER_ACCOUNT,
  'AWS::URLSuffix': 'amazonaws.com',
  'AWS::StackName': 'placeholder-stack',
  'AWS::StackId': `arn:${PLACEHOLDER_PARTITION}:cloudformation:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:stack/placeholder-stack/00000000-0000-0000-0000-000000000000`,
};

const PLACEHOLDER_AZS = ['a', 'b', 'c'].map((s) => `${PLACEHOLDER_REGION}${s}`);

interface Ctx {
  logicalId: string;
  template: Record<string, any>;
}

interface ResolvedList {
  items: string[];
  /** True when the list was derived from placeholders, so its length is not meaningful. */
  synthetic: boolean;
  label: string;
}

/** Keeps placeholders safe inside JSON string literals: no quotes, backslashes, `$`, braces or whitespace. */
function sanitize(s: string): string {
  return s.replace(/[^A-Za-z0-9._:/@+=,-]/g, '-');
}

function isIntrinsic(node: unknown): node is Record<string, unknown> {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return false;
  const keys = Object.keys(node);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::'));
}

function containsIntrinsic(node: unknown): boolean {
  if (isIntrinsic(node)) return true;
  if (Array.isArray(node)) return node.some(containsIntrinsic);
  if (node !== null && typeof node === 'object') return Object.values(node).some(containsIntrinsic);
  return false;
}

function fail(ctx: Ctx, path: string[], message: string): never {
  throw new Error(`State machine ${ctx.logicalId}: ${message} (at ${path.join('/')})`);
}

function unsupported(ctx: Ctx, path: string[], what: string, position: string): never {
  return fail(ctx, path, `unsupported intrinsic ${what} in a ${position} position; extend test/support/asl.ts to render it`);
}

function resourceType(ctx: Ctx, logicalId: string): string | undefined {
  return ctx.template.Resources?.[logicalId]?.Type;
}

function refPlaceholder(ctx: Ctx, path: string[], target: unknown): string {
  if (typeof target !== 'string') fail(ctx, path, `Ref expects a logical id string, got ${JSON.stringify(target)}`);
  if (target in PSEUDO_PARAMETERS) return PSEUDO_PARAMETERS[target];
  if (target.startsWith('AWS::')) unsupported(ctx, path, `Ref ${target}`, 'string');
  const type = resourceType(ctx, target);
  return type !== undefined && REF_RETURNS_ARN.has(type) ? placeholderArn(target) : placeholderRef(target);
}

function parseGetAtt(ctx: Ctx, path: string[], arg: unknown): [string, string] {
  if (typeof arg === 'string') {
    const dot = arg.indexOf('.');
    if (dot > 0) return [arg.slice(0, dot), arg.slice(dot + 1)];
  } else if (Array.isArray(arg) && arg.length === 2 && typeof arg[0] === 'string') {
    const attr = typeof arg[1] === 'string' ? arg[1] : resolveString(ctx, arg[1], [...path, '1']);
    return [arg[0], attr];
  }
  return fail(ctx, path, `malformed Fn::GetAtt ${JSON.stringify(arg)}`);
}

function getAttPlaceholder(logicalId: string, attr: string): string {
  if (attr === 'Arn') return placeholderArn(logicalId);
  if (attr.endsWith('Arn')) return `${placeholderArn(logicalId)}.${sanitize(attr)}`;
  return `${placeholderRef(logicalId)}-${sanitize(attr)}`;
}

function expectArgs(ctx: Ctx, path: string[], fn: string, arg: unknown, min: number, max = min): unknown[] {
  if (!Array.isArray(arg) || arg.length < min || arg.length > max) {
    fail(ctx, path, `malformed ${fn}: expected a list of ${min === max ? min : `${min}-${max}`} arguments, got ${JSON.stringify(arg)}`);
  }
  return arg;
}

function resolveSub(ctx: Ctx, path: string[], arg: unknown): string {
  let text: unknown = arg;
  let vars: Record<string, unknown> = {};
  if (Array.isArray(arg)) {
    [text, vars] = expectArgs(ctx, path, 'Fn::Sub', arg, 2) as [unknown, Record<string, unknown>];
    if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) fail(ctx, path, 'malformed Fn::Sub variable map');
  }
  if (typeof text !== 'string') return fail(ctx, path, `malformed Fn::Sub template ${JSON.stringify(text)}`);
  return text.replace(/\$\{([^}]*)\}/g, (_match, rawName: string) => {
    if (rawName.startsWith('!')) return `\${${rawName.slice(1)}}`;
    const name = rawName.trim();
    if (Object.prototype.hasOwnProperty.call(vars, name)) return resolveString(ctx, vars[name], [...path, name]);
    if (name.startsWith('AWS::')) return refPlaceholder(ctx, [...path, name], name);
    const dot = name.indexOf('.');
    if (dot > 0) return getAttPlaceholder(name.slice(0, dot), name.slice(dot + 1));
    return refPlaceholder(ctx, [...path, name], name);
  });
}

function resolveFindInMap(ctx: Ctx, path: string[], arg: unknown): string {
  const args = expectArgs(ctx, path, 'Fn::FindInMap', arg, 3, 4);
  const [mapName, top, second] = args.slice(0, 3).map((a, i) => resolveString(ctx, a, [...path, String(i)]));
  const value = ctx.template.Mappings?.[mapName]?.[top]?.[second];
  if (value !== undefined) return resolveString(ctx, value, [...path, 'value']);
  const fallback = args[3] as { DefaultValue?: unknown } | undefined;
  if (fallback && typeof fallback === 'object' && 'DefaultValue' in fallback) {
    return resolveString(ctx, fallback.DefaultValue, [...path, '3', 'DefaultValue']);
  }
  return fail(ctx, path, `Fn::FindInMap found no Mappings entry ${mapName}/${top}/${second}`);
}

/** Resolves a node that must evaluate to a string. */
function resolveString(ctx: Ctx, node: unknown, path: string[]): string {
  if (typeof node === 'string') return node;
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  if (!isIntrinsic(node)) return fail(ctx, path, `expected a string or an intrinsic function, got ${JSON.stringify(node)}`);
  const [fn, arg] = Object.entries(node)[0];
  const here = [...path, fn];
  switch (fn) {
    case 'Ref':
      return refPlaceholder(ctx, here, arg);
    case 'Fn::GetAtt': {
      const [logicalId, attr] = parseGetAtt(ctx, here, arg);
      return getAttPlaceholder(logicalId, attr);
    }
    case 'Fn::Join': {
      const [delimiter, list] = expectArgs(ctx, here, fn, arg, 2);
      if (typeof delimiter !== 'string') fail(ctx, here, 'Fn::Join delimiter must be a literal string');
      return resolveList(ctx, list, [...here, '1']).items.join(delimiter);
    }
    case 'Fn::Select': {
      const [rawIndex, list] = expectArgs(ctx, here, fn, arg, 2);
      const index = Number(resolveString(ctx, rawIndex, [...here, '0']));
      if (!Number.isInteger(index) || index < 0) fail(ctx, here, `Fn::Select index ${JSON.stringify(rawIndex)} is not a non-negative integer`);
      const resolved = resolveList(ctx, list, [...here, '1']);
      if (index < resolved.items.length) return resolved.items[index];
      if (resolved.synthetic) return `${resolved.label}-${index}`;
      return fail(ctx, here, `Fn::Select index ${index} is out of range for a list of ${resolved.items.length}`);
    }
    case 'Fn::Sub':
      return resolveSub(ctx, here, arg);
    case 'Fn::ImportValue':
      return `placeholder-import-${sanitize(resolveString(ctx, arg, here))}`;
    case 'Fn::GetStackOutput': {
      // aws-cdk-lib's cross-stack reference: { StackName, Region?, OutputName }. Output names that end
      // in "Arn" become ARN placeholders so that Task Resource fields stay valid ARNs.
      const outputName = resolveString(ctx, (arg as { OutputName?: unknown })?.OutputName, [...here, 'OutputName']);
      return /Arn[0-9A-F]{8}$/.test(outputName) ? placeholderArn(`output-${outputName}`) : `placeholder-output-${sanitize(outputName)}`;
    }
    case 'Fn::FindInMap':
      return resolveFindInMap(ctx, here, arg);
    case 'Fn::Base64':
      return Buffer.from(resolveString(ctx, arg, here), 'utf8').toString('base64');
    default:
      return unsupported(ctx, here, fn, 'string');
  }
}

/** Resolves a node that must evaluate to a list of strings. */
function resolveList(ctx: Ctx, node: unknown, path: string[]): ResolvedList {
  if (Array.isArray(node)) {
    return { items: node.map((n, i) => resolveString(ctx, n, [...path, String(i)])), synthetic: false, label: 'placeholder-list' };
  }
  if (!isIntrinsic(node)) return fail(ctx, path, `expected a list or an intrinsic function, got ${JSON.stringify(node)}`);
  const [fn, arg] = Object.entries(node)[0];
  const here = [...path, fn];
  switch (fn) {
    case 'Fn::Split': {
      const [delimiter, source] = expectArgs(ctx, here, fn, arg, 2);
      if (typeof delimiter !== 'string') fail(ctx, here, 'Fn::Split delimiter must be a literal string');
      const text = resolveString(ctx, source, [...here, '1']);
      return { items: text.split(delimiter), synthetic: containsIntrinsic(source), label: `${text}-split` };
    }
    case 'Fn::GetAZs':
      return { items: [...PLACEHOLDER_AZS], synthetic: false, label: 'placeholder-az' };
    case 'Ref': {
      // A list-typed parameter (CommaDelimitedList, List<...>) or AWS::NotificationARNs: length unknown.
      if (typeof arg !== 'string') return fail(ctx, here, `Ref expects a logical id string, got ${JSON.stringify(arg)}`);
      const paramType: unknown = ctx.template.Parameters?.[arg]?.Type;
      const isList = arg === 'AWS::NotificationARNs' || (typeof paramType === 'string' && /^(CommaDelimitedList|List<)/.test(paramType));
      if (!isList) return unsupported(ctx, here, `Ref ${arg}`, 'list');
      return { items: [], synthetic: true, label: placeholderRef(arg) };
    }
    case 'Fn::GetAtt': {
      // A list-valued attribute (e.g. an endpoint's DNS entries): length unknown.
      const [logicalId, attr] = parseGetAtt(ctx, here, arg);
      return { items: [], synthetic: true, label: getAttPlaceholder(logicalId, attr) };
    }
    default:
      return unsupported(ctx, here, fn, 'list');
  }
}

function resolveSubstitutions(ctx: Ctx, subs: unknown): Record<string, string> {
  if (subs === undefined) return {};
  if (subs === null || typeof subs !== 'object' || Array.isArray(subs)) {
    return fail(ctx, ['DefinitionSubstitutions'], 'DefinitionSubstitutions must be an object');
  }
  return Object.fromEntries(
    Object.entries(subs).map(([k, v]) => [k, resolveString(ctx, v, ['DefinitionSubstitutions', k])]),
  );
}

function applySubstitutions(text: string, subs: Record<string, string>): string {
  if (Object.keys(subs).length === 0) return text;
  return text.replace(/\$\{([^}]+)\}/g, (match, name: string) =>
    Object.prototype.hasOwnProperty.call(subs, name) ? subs[name] : match,
  );
}

/** Walks a `Definition` object, replacing intrinsics by placeholders and applying substitutions to strings. */
function renderDefinitionObject(ctx: Ctx, node: unknown, subs: Record<string, string>, path: string[]): unknown {
  if (isIntrinsic(node)) return applySubstitutions(resolveString(ctx, node, path), subs);
  if (typeof node === 'string') return applySubstitutions(node, subs);
  if (Array.isArray(node)) return node.map((n, i) => renderDefinitionObject(ctx, n, subs, [...path, String(i)]));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, renderDefinitionObject(ctx, v, subs, [...path, k])]),
    );
  }
  return node;
}

function renderOne(ctx: Ctx, properties: Record<string, any>): object {
  const subs = resolveSubstitutions(ctx, properties.DefinitionSubstitutions);
  if (properties.DefinitionString !== undefined) {
    const text = applySubstitutions(resolveString(ctx, properties.DefinitionString, ['DefinitionString']), subs);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      fail(ctx, ['DefinitionString'], `rendered DefinitionString is not valid JSON (${(e as Error).message}): ${text}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      fail(ctx, ['DefinitionString'], 'rendered DefinitionString is not a JSON object');
    }
    return parsed as object;
  }
  if (properties.Definition !== undefined) {
    const rendered = renderDefinitionObject(ctx, properties.Definition, subs, ['Definition']);
    if (rendered === null || typeof rendered !== 'object' || Array.isArray(rendered)) {
      fail(ctx, ['Definition'], 'Definition is not a JSON object');
    }
    return rendered as object;
  }
  if (properties.DefinitionS3Location !== undefined) {
    fail(ctx, ['DefinitionS3Location'], 'the definition lives in S3 (DefinitionS3Location) and cannot be rendered offline');
  }
  return fail(ctx, ['Properties'], 'has neither DefinitionString nor Definition');
}

/**
 * Renders every `AWS::StepFunctions::StateMachine` in a synthesized template (e.g.
 * `Template.fromStack(stack).toJSON()` or a parsed `cdk.out/*.template.json`) into a concrete ASL object,
 * replacing intrinsics with placeholders (see the header of this file).
 */
export function renderStateMachineDefinitions(template: Record<string, any>): RenderedStateMachine[] {
  const resources: Record<string, any> = template?.Resources ?? {};
  return Object.entries(resources)
    .filter(([, resource]) => resource?.Type === 'AWS::StepFunctions::StateMachine')
    .map(([logicalId, resource]) => ({
      logicalId,
      definition: renderOne({ logicalId, template }, resource.Properties ?? {}),
    }));
}
