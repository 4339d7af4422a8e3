import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { assertRequiredProps } from '../core/private/props';
import type { InferenceRoute } from './inference-route';
import type { RealTimeInferenceApi } from './real-time-inference-api';

// Composite models of a RealTimeInferenceApi (seed patterns 14, Ensemble Methods, and 20, Multi-stage
// Prediction): a route of their own whose document names other models' routes. The handler's side, and
// the rules mirrored below, are in lambda/shared/composite.ts.

/** Largest number of members of an ensemble, and of stages of a cascade or chain. */
const MAX_MEMBERS = 10;
const MAX_STAGES = 5;
const MODEL_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
const SAGEMAKER_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const JSON_POINTER = /^(\/([^~]|~[01])*)*$/;

/** Where a value is in a model's answer: a JSON pointer (RFC 6901) or a CSV column. */
export class OutputField {
  /** The value at this RFC 6901 pointer of a JSON answer, e.g. `/predictions/0/score`; `''` is the whole answer. */
  public static jsonPointer(pointer: string): OutputField {
    return new OutputField({ pointer });
  }

  /** The value in this column (from 0) of the first line of a CSV answer. */
  public static csvColumn(column: number): OutputField {
    return new OutputField({ csvColumn: column });
  }

  private constructor(private readonly document: { readonly pointer: string } | { readonly csvColumn: number }) {}

  /** What is wrong with it, named at `path` (empty when nothing is). */
  public problems(path: string): string[] {
    if ('pointer' in this.document) {
      const { pointer } = this.document;
      return typeof pointer === 'string' && pointer.length <= 256 && JSON_POINTER.test(pointer) ? [] : [`${path}: must be a JSON pointer of at most 256 characters: empty, or /-separated tokens with ~0 and ~1 escapes; got ${JSON.stringify(pointer)}`];
    }
    const { csvColumn } = this.document;
    return Number.isInteger(csvColumn) && csvColumn >= 0 && csvColumn <= 999 ? [] : [`${path}: a CSV column must be a whole number from 0 to 999; got ${csvColumn}`];
  }

  /** The route document's form. */
  public toJson(): { readonly pointer: string } | { readonly csvColumn: number } {
    return this.document;
  }
}

/** How an ensemble combines its members' outputs. */
export enum EnsembleCombiner {
  /** Mean of the scores. */
  MEAN = 'mean',
  /** Mean of the scores weighted by the members' `weight`. */
  WEIGHTED_MEAN = 'weighted-mean',
  /** Median of the scores. */
  MEDIAN = 'median',
  /** The label most members gave; a tie goes to the label whose JSON sorts first. */
  VOTE = 'vote',
  /** The label with the largest total `weight`. */
  WEIGHTED_VOTE = 'weighted-vote',
  /** The members' outputs, in member order, are the input of a meta-model (`metaModel`). */
  STACKING = 'stacking',
}

/** A model a composite calls: a served model (by name or its route), optionally one variant or container of it. */
export interface CompositeModel {
  /** A model the API serves: its name, or the route `addEndpoint` returned. */
  readonly model: string | InferenceRoute;
  /**
   * A production variant of the model's endpoint (sent as TargetVariant).
   * @default - the model's own routing (sticky or weighted)
   */
  readonly variant?: string;
}

export interface EnsembleMember extends CompositeModel {
  /**
   * A container of a multi-container endpoint in Direct mode (sent as TargetContainerHostname).
   * @default - the endpoint's only container
   */
  readonly container?: string;
  /** Weight in the weighted combiners. @default 1 */
  readonly weight?: number;
}

export interface EnsembleOptions {
  /** 2-10 members, called concurrently. */
  readonly members: EnsembleMember[];
  readonly combiner: EnsembleCombiner;
  /**
   * Where each member's score or label is in its answer.
   * @default - the whole answer
   */
  readonly output?: OutputField;
  /**
   * Members that must answer for the ensemble to answer; with fewer, it answers 502 `EnsembleQuorumNotMet`
   * (or the members' shared 429, 503 or 504). An answer without every member is marked `degraded`.
   * @default - more than half of the members; every member for stacking
   */
  readonly quorum?: number;
  /** The model that combines the outputs, for {@link EnsembleCombiner.STACKING}. */
  readonly metaModel?: CompositeModel & {
    /** @default 'application/json' (a JSON array of the outputs); 'text/csv' sends one CSV row */
    readonly contentType?: 'application/json' | 'text/csv';
  };
  /**
   * Time each member's call may take (10 ms to 25 s); a slower member is aborted and counts as failed.
   * @default Duration.seconds(3)
   */
  readonly timeout?: Duration;
}

export interface CascadeStage extends CompositeModel {
  /** Where the stage's confidence is in its answer: required on every stage but the last. */
  readonly confidence?: OutputField;
  /** The stage answers when its confidence is at least this: required on every stage but the last. */
  readonly threshold?: number;
}

export interface CascadeOptions {
  /**
   * 2-5 stages, cheapest first. A stage answers when it is confident; otherwise (or when it fails) the next
   * one is asked. The last always answers; when it fails, the most confident earlier answer does, `degraded`.
   */
  readonly stages: CascadeStage[];
  /** Time each stage's call may take (10 ms to 25 s). @default Duration.seconds(3) */
  readonly timeout?: Duration;
}

export interface ChainStage extends CompositeModel {
  /**
   * The stage's payload, read by JSON pointers from `{ request, previous, stages }` (the request's payload,
   * the previous stage's answer, every earlier answer by position): one pointer (its value is the payload), or
   * an object whose fields are pointers, e.g. `{ user: '/request/user', candidates: '/previous/items' }`.
   * @default - the previous stage's answer (the first stage: the request's payload)
   */
  readonly input?: string | Record<string, string>;
}

export interface ChainOptions {
  /** 2-5 stages, run in order; the last one's answer is the chain's. */
  readonly stages: ChainStage[];
  /** Time each stage's call may take (10 ms to 25 s). @default Duration.seconds(3) */
  readonly timeout?: Duration;
}

/** A composite's kind and options. */
export type CompositeDefinition =
  | ({ readonly kind: 'ensemble' } & EnsembleOptions)
  | ({ readonly kind: 'cascade' } & CascadeOptions)
  | ({ readonly kind: 'chain' } & ChainOptions);

export interface CompositeRouteProps {
  /** The API that serves the composite, and the models it calls. */
  readonly api: RealTimeInferenceApi;
  /** The name served at `POST /models/{name}/predict`: 2-32 lowercase letters, digits or hyphens. */
  readonly name: string;
  readonly definition: CompositeDefinition;
}

/**
 * A composite model of a {@link RealTimeInferenceApi}: an ensemble, cascade or chain of models the API
 * serves, at `POST /models/{name}/predict` with the same IAM auth. Its route is an SSM parameter
 * `<api prefix><name>`; each model it calls goes through its own route (cache, circuit breaker, fallback).
 * Usually made by `api.addEnsemble`, `api.addCascade` or `api.addChain`. The models it names are checked
 * when the app synthesizes, so they may be added after it.
 */
export class CompositeRoute extends Construct {
  public readonly parameter: ssm.StringParameter;
  public readonly modelName: string;
  public readonly kind: CompositeDefinition['kind'];
  /** The models it calls, each once. */
  public readonly models: string[];

  constructor(scope: Construct, id: string, props: CompositeRouteProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'CompositeRoute', props, { api: 'construct', name: 'string', definition: 'object' });
    const { api, name, definition } = props;
    const where = `${this.node.path} (CompositeRoute)`;
    const problems = compositeProblems(name, definition);
    if (problems.length > 0) throw new Error(`${where}: ${problems.join('; ')}`);
    this.modelName = name;
    this.kind = definition.kind;
    const document = compositeDocument(definition);
    this.models = [...new Set(partsOf(definition).map((part) => modelNameOf(part.model)))];
    // The models are checked at synth, once every family has been added to the API.
    this.node.addValidation({ validate: () => servedProblems(api, name, definition) });
    this.parameter = new ssm.StringParameter(this, 'Parameter', {
      parameterName: `${api.routeParameterPrefix}${name}`,
      stringValue: Stack.of(this).toJsonString({ composite: document }),
      description: `Route of composite model ${name} (${definition.kind}) for the real-time inference API`,
      tier: ssm.ParameterTier.STANDARD,
    });
  }
}

/** Every model the definition calls, with where it is named. */
function partsOf(definition: CompositeDefinition): Array<{ readonly path: string; readonly model: string | InferenceRoute; readonly variant?: string }> {
  if (definition.kind === 'ensemble') {
    const members = (definition.members ?? []).map((member, index) => ({ path: `members[${index}]`, model: member.model, ...(member.variant === undefined ? {} : { variant: member.variant }) }));
    return definition.metaModel === undefined ? members : [...members, { path: 'metaModel', model: definition.metaModel.model, ...(definition.metaModel.variant === undefined ? {} : { variant: definition.metaModel.variant }) }];
  }
  return (definition.stages ?? []).map((stage, index) => ({ path: `stages[${index}]`, model: stage.model, ...(stage.variant === undefined ? {} : { variant: stage.variant }) }));
}

function modelNameOf(model: string | InferenceRoute): string {
  return typeof model === 'string' ? model : model.modelName;
}

/** What is wrong with the definition on its own, one message per problem (the rules of lambda/shared/composite.ts). */
export function compositeProblems(name: string, definition: CompositeDefinition, path = ''): string[] {
  const problems: string[] = [];
  if (typeof name !== 'string' || Token.isUnresolved(name) || !MODEL_NAME.test(name)) {
    problems.push(`${path}name: must be 2-32 lowercase letters, digits or hyphens, starting with a letter; got ${JSON.stringify(name)}`);
  }
  const kind: unknown = definition?.kind;
  if (kind !== 'ensemble' && kind !== 'cascade' && kind !== 'chain') return [...problems, `${path}kind: must be ensemble, cascade or chain; got ${JSON.stringify(kind)}`];
  const timeout = definition.timeout;
  if (timeout !== undefined) {
    const ms = typeof (timeout as Partial<Duration>).toMilliseconds === 'function' ? timeout.toMilliseconds({ integral: false }) : NaN;
    if (!(Number.isInteger(ms) && ms >= 10 && ms <= 25_000)) problems.push(`${path}timeout: must be whole milliseconds from 10 ms to 25 seconds (API Gateway gives up at 29 s); got ${Number.isNaN(ms) ? JSON.stringify(timeout) : `${ms} ms`}`);
  }
  for (const part of partsOf(definition)) {
    const model = modelNameOf(part.model);
    if (typeof model !== 'string' || !MODEL_NAME.test(model)) problems.push(`${path}${part.path}.model: must be a model name; got ${JSON.stringify(model)}`);
    if (part.variant !== undefined && !SAGEMAKER_NAME.test(part.variant)) problems.push(`${path}${part.path}.variant: must be a variant name (1-63 letters, digits or hyphens); got ${JSON.stringify(part.variant)}`);
  }
  if (definition.kind === 'ensemble') {
    const members = definition.members ?? [];
    if (!Array.isArray(members) || members.length < 2 || members.length > MAX_MEMBERS) problems.push(`${path}members: must list 2-${MAX_MEMBERS} members; got ${Array.isArray(members) ? members.length : JSON.stringify(members)}`);
    const combiners = Object.values(EnsembleCombiner) as string[];
    if (!combiners.includes(definition.combiner)) problems.push(`${path}combiner: must be one of ${combiners.join(', ')}; got ${JSON.stringify(definition.combiner)}`);
    if (definition.output !== undefined) problems.push(...definition.output.problems(`${path}output`));
    const seen = new Set<string>();
    members.forEach((member, index) => {
      if (member.container !== undefined && !SAGEMAKER_NAME.test(member.container)) problems.push(`${path}members[${index}].container: must be a container hostname (1-63 letters, digits or hyphens); got ${JSON.stringify(member.container)}`);
      if (member.weight !== undefined && !(typeof member.weight === 'number' && member.weight > 0 && member.weight <= 1e6)) problems.push(`${path}members[${index}].weight: must be above 0 and at most 1000000; got ${member.weight}`);
      const key = `${modelNameOf(member.model)}/${member.variant ?? ''}/${member.container ?? ''}`;
      if (seen.has(key)) problems.push(`${path}members[${index}]: repeats an earlier member (same model, variant and container)`);
      seen.add(key);
    });
    const quorum = definition.quorum;
    if (quorum !== undefined && !(Number.isInteger(quorum) && quorum >= 1 && quorum <= members.length)) problems.push(`${path}quorum: must be a whole number from 1 to the number of members (${members.length}); got ${quorum}`);
    if (definition.combiner === EnsembleCombiner.STACKING) {
      if (definition.metaModel === undefined) problems.push(`${path}metaModel: is required with the stacking combiner`);
      if (quorum !== undefined && quorum !== members.length) problems.push(`${path}quorum: must be every member (${members.length}) with the stacking combiner: the meta-model takes one output per member`);
    } else if (definition.metaModel !== undefined) {
      problems.push(`${path}metaModel: is only used by the stacking combiner`);
    }
    const contentType = definition.metaModel?.contentType;
    if (contentType !== undefined && contentType !== 'application/json' && contentType !== 'text/csv') problems.push(`${path}metaModel.contentType: must be application/json or text/csv; got ${JSON.stringify(contentType)}`);
    return problems;
  }
  const stages = definition.stages ?? [];
  if (!Array.isArray(stages) || stages.length < 2 || stages.length > MAX_STAGES) problems.push(`${path}stages: must list 2-${MAX_STAGES} stages; got ${Array.isArray(stages) ? stages.length : JSON.stringify(stages)}`);
  if (definition.kind === 'cascade') {
    definition.stages.forEach((stage, index) => {
      const at = `${path}stages[${index}]`;
      const last = index === definition.stages.length - 1;
      if (last) {
        if (stage.confidence !== undefined || stage.threshold !== undefined) problems.push(`${at}: is the last stage, which always answers: it takes no confidence or threshold`);
        return;
      }
      if (stage.confidence === undefined) problems.push(`${at}.confidence: is required on every stage but the last`);
      else problems.push(...stage.confidence.problems(`${at}.confidence`));
      if (stage.threshold === undefined) problems.push(`${at}.threshold: is required on every stage but the last`);
      else if (!(typeof stage.threshold === 'number' && Number.isFinite(stage.threshold) && Math.abs(stage.threshold) <= 1e9)) problems.push(`${at}.threshold: must be a number from -1000000000 to 1000000000; got ${stage.threshold}`);
    });
  } else {
    definition.stages.forEach((stage, index) => {
      const input = stage.input;
      if (input === undefined) return;
      const pointers = typeof input === 'string' ? [['', input] as const] : Object.entries(input);
      for (const [field, pointer] of pointers) {
        const at = `${path}stages[${index}].input${field === '' ? '' : `.${field}`}`;
        if (typeof pointer !== 'string' || pointer.length > 256 || !JSON_POINTER.test(pointer)) problems.push(`${at}: must be a JSON pointer into { request, previous, stages }; got ${JSON.stringify(pointer)}`);
        else if (!/^\/(request|previous|stages)(\/|$)/.test(pointer)) problems.push(`${at}: must start with /request, /previous or /stages; got ${JSON.stringify(pointer)}`);
        if (field.length > 128) problems.push(`${at}: field names must be at most 128 characters`);
      }
    });
  }
  return problems;
}

/** What is wrong with the models the definition names, against what the API serves (at synth). */
function servedProblems(api: RealTimeInferenceApi, name: string, definition: CompositeDefinition): string[] {
  const problems: string[] = [];
  if (api.modelNames.includes(name)) problems.push(`name: '${name}' is also a model served by the API`);
  for (const part of partsOf(definition)) {
    const model = modelNameOf(part.model);
    const route = api.routeOf(model);
    if (route === undefined) {
      problems.push(`${part.path}.model: '${model}' is not a model the API serves (${api.modelNames.join(', ') || 'none yet'}); composites call models added with addEndpoint`);
      continue;
    }
    if (part.variant !== undefined && !route.productionVariants.includes(part.variant)) {
      problems.push(`${part.path}.variant: '${part.variant}' is not a production variant of '${model}' (${route.productionVariants.join(', ')})`);
    }
  }
  return problems;
}

/** The route document: lambda/shared/composite.ts, CompositeSpecSchema. */
function compositeDocument(definition: CompositeDefinition): Record<string, unknown> {
  const timeout = definition.timeout === undefined ? {} : { timeoutMs: definition.timeout.toMilliseconds() };
  const model = (part: CompositeModel) => ({ model: modelNameOf(part.model), ...(part.variant === undefined ? {} : { variant: part.variant }) });
  switch (definition.kind) {
    case 'ensemble':
      return {
        kind: 'ensemble',
        members: definition.members.map((member) => ({ ...model(member), ...(member.container === undefined ? {} : { container: member.container }), ...(member.weight === undefined ? {} : { weight: member.weight }) })),
        combiner: definition.combiner,
        ...(definition.output === undefined ? {} : { output: definition.output.toJson() }),
        ...(definition.quorum === undefined ? {} : { quorum: definition.quorum }),
        ...(definition.metaModel === undefined ? {} : { metaModel: { ...model(definition.metaModel), ...(definition.metaModel.contentType === undefined ? {} : { contentType: definition.metaModel.contentType }) } }),
        ...timeout,
      };
    case 'cascade':
      return {
        kind: 'cascade',
        stages: definition.stages.map((stage) => ({ ...model(stage), ...(stage.confidence === undefined ? {} : { confidence: stage.confidence.toJson() }), ...(stage.threshold === undefined ? {} : { threshold: stage.threshold }) })),
        ...timeout,
      };
    case 'chain':
      return { kind: 'chain', stages: definition.stages.map((stage) => ({ ...model(stage), ...(stage.input === undefined ? {} : { input: stage.input }) })), ...timeout };
  }
}

