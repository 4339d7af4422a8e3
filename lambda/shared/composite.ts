// Composite models of the real-time inference API: ensembles, cascades and chains (seed patterns 14,
// Ensemble Methods, and 20, Multi-stage Prediction). A composite is a route of its own, served at
// `POST /models/{name}/predict` like any model, whose document names other models' routes instead of an
// endpoint. This module holds its schema and the pure parts: reading a value out of an answer (JSON
// pointer or CSV column), the combiners, the cascade's confidence test and the chain's input mapping.
// lambda/shared/inference.ts runs the members through the same cache, breakers and fallbacks as any model.
import * as z from './zod';

/** Largest number of members an ensemble calls at once, and of stages a cascade or chain runs. */
export const MAX_ENSEMBLE_MEMBERS = 10;
export const MAX_STAGES = 5;
/** Default time each member or stage call may take, in ms. */
export const DEFAULT_COMPOSITE_TIMEOUT_MS = 3_000;

const MODEL_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
const SAGEMAKER_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

const ModelNameSchema = z.string({ error: 'must be a model name' }).check(z.regex(MODEL_NAME, 'must be a model name: 2-32 lowercase letters, digits or hyphens'));
const VariantSchema = z.string({ error: 'must be a variant name' }).check(z.regex(SAGEMAKER_NAME, 'must be a variant name: 1-63 letters, digits or hyphens'));

/** RFC 6901: the empty string (the whole value) or `/`-separated tokens, `~0` for `~` and `~1` for `/`. */
export const JsonPointerSchema = z
  .string({ error: 'must be a JSON pointer' })
  .check(z.maxLength(256, 'must be at most 256 characters'), z.regex(/^(\/([^~]|~[01])*)*$/, 'must be a JSON pointer: empty, or /-separated tokens with ~0 and ~1 escapes'));

/** Where a member's score, label or confidence is in its answer. */
export const ExtractorSchema = z.union([
  z.strictObject({ pointer: JsonPointerSchema }),
  z.strictObject({ csvColumn: z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(0, 'must be at least 0'), z.maximum(999, 'must be at most 999')) }),
]);
export type Extractor = z.output<typeof ExtractorSchema>;

const TimeoutSchema = z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(10, 'must be at least 10 (ms)'), z.maximum(25_000, 'must be at most 25000 (ms): API Gateway gives up at 29 s'));

export const COMBINERS = ['mean', 'weighted-mean', 'median', 'vote', 'weighted-vote', 'stacking'] as const;
export type Combiner = (typeof COMBINERS)[number];

export const EnsembleMemberSchema = z.strictObject({
  /** Another model's route: its endpoint, cache, breaker and fallback. */
  model: ModelNameSchema,
  /** A production variant of that model's endpoint (TargetVariant). */
  variant: z.optional(VariantSchema),
  /** A container of a multi-container endpoint in Direct mode (TargetContainerHostname). */
  container: z.optional(VariantSchema),
  /** Weight in `weighted-mean` and `weighted-vote`. @default 1 */
  weight: z.optional(z.number({ error: 'must be a number' }).check(z.gt(0, 'must be above 0'), z.maximum(1e6, 'must be at most 1000000'))),
});
export type EnsembleMember = z.output<typeof EnsembleMemberSchema>;

export const EnsembleSchema = z
  .strictObject({
    kind: z.literal('ensemble'),
    members: z.array(EnsembleMemberSchema).check(z.minLength(2, 'must list at least 2 members'), z.maxLength(MAX_ENSEMBLE_MEMBERS, `must list at most ${MAX_ENSEMBLE_MEMBERS} members`)),
    combiner: z.enum(COMBINERS, { error: () => `must be one of ${COMBINERS.join(', ')}` }),
    /** Where each member's score or label is in its answer. @default - the whole answer */
    output: z.optional(ExtractorSchema),
    /** Members that must answer. @default - more than half of them (all of them for stacking) */
    quorum: z.optional(z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(1, 'must be at least 1'))),
    /** Time each member's call may take, in ms. */
    timeoutMs: z.optional(TimeoutSchema),
    /** For `stacking`: the model that combines the members' outputs (a JSON array of them, or one CSV row). */
    metaModel: z.optional(z.strictObject({ model: ModelNameSchema, variant: z.optional(VariantSchema), contentType: z.optional(z.enum(['application/json', 'text/csv'])) })),
  })
  .check(
    z.superRefine((ensemble, ctx) => {
      if (ensemble.quorum !== undefined && ensemble.quorum > ensemble.members.length) {
        ctx.addIssue({ code: 'custom', path: ['quorum'], message: `must be at most the number of members (${ensemble.members.length})` });
      }
      if (ensemble.combiner === 'stacking') {
        if (ensemble.metaModel === undefined) ctx.addIssue({ code: 'custom', path: ['metaModel'], message: 'is required with the stacking combiner' });
        if (ensemble.quorum !== undefined && ensemble.quorum !== ensemble.members.length) {
          ctx.addIssue({ code: 'custom', path: ['quorum'], message: 'must be every member with the stacking combiner: the meta-model takes one output per member' });
        }
      } else if (ensemble.metaModel !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['metaModel'], message: 'is only used by the stacking combiner' });
      }
      const seen = new Set<string>();
      ensemble.members.forEach((member, index) => {
        const key = `${member.model}/${member.variant ?? ''}/${member.container ?? ''}`;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['members', index], message: 'repeats an earlier member (same model, variant and container)' });
        seen.add(key);
      });
    }),
  );

export const CascadeStageSchema = z.strictObject({
  model: ModelNameSchema,
  variant: z.optional(VariantSchema),
  /** Where the stage's confidence is in its answer; every stage but the last has one. */
  confidence: z.optional(ExtractorSchema),
  /** The stage answers when its confidence is at least this. */
  threshold: z.optional(z.number({ error: 'must be a number' }).check(z.minimum(-1e9, 'must be at least -1000000000'), z.maximum(1e9, 'must be at most 1000000000'))),
});

export const CascadeSchema = z
  .strictObject({
    kind: z.literal('cascade'),
    stages: z.array(CascadeStageSchema).check(z.minLength(2, 'must list at least 2 stages'), z.maxLength(MAX_STAGES, `must list at most ${MAX_STAGES} stages`)),
    timeoutMs: z.optional(TimeoutSchema),
  })
  .check(
    z.superRefine((cascade, ctx) => {
      cascade.stages.forEach((stage, index) => {
        const last = index === cascade.stages.length - 1;
        if (!last && stage.confidence === undefined) ctx.addIssue({ code: 'custom', path: ['stages', index, 'confidence'], message: 'is required on every stage but the last' });
        if (!last && stage.threshold === undefined) ctx.addIssue({ code: 'custom', path: ['stages', index, 'threshold'], message: 'is required on every stage but the last' });
        if (last && (stage.confidence !== undefined || stage.threshold !== undefined)) {
          ctx.addIssue({ code: 'custom', path: ['stages', index], message: 'is the last stage, which always answers: it takes no confidence or threshold' });
        }
      });
    }),
  );

/** A stage's input: a pointer (its value is the payload) or an object whose fields are pointers. */
export const ChainInputSchema = z.union([JsonPointerSchema, z.record(z.string().check(z.minLength(1, 'field names must be non-empty'), z.maxLength(128, 'field names must be at most 128 characters')), JsonPointerSchema)]);
export type ChainInput = z.output<typeof ChainInputSchema>;

export const ChainStageSchema = z.strictObject({
  model: ModelNameSchema,
  variant: z.optional(VariantSchema),
  /**
   * The stage's payload, read from `{ request, previous, stages }`: the request's payload, the previous
   * stage's answer and every earlier stage's answer by position. @default - the previous stage's answer (the
   * first stage: the request's payload)
   */
  input: z.optional(ChainInputSchema),
});

export const ChainSchema = z.strictObject({
  kind: z.literal('chain'),
  stages: z.array(ChainStageSchema).check(z.minLength(2, 'must list at least 2 stages'), z.maxLength(MAX_STAGES, `must list at most ${MAX_STAGES} stages`)),
  timeoutMs: z.optional(TimeoutSchema),
});

export const CompositeSpecSchema = z.discriminatedUnion('kind', [EnsembleSchema, CascadeSchema, ChainSchema]);
export type CompositeSpec = z.output<typeof CompositeSpecSchema>;
export type EnsembleSpec = z.output<typeof EnsembleSchema>;
export type CascadeSpec = z.output<typeof CascadeSchema>;
export type ChainSpec = z.output<typeof ChainSchema>;

/** A composite model's route document: `{ "composite": { "kind": "ensemble" | "cascade" | "chain", ... } }`. */
export const CompositeRouteSchema = z.strictObject({ composite: CompositeSpecSchema });
export type CompositeRoute = z.output<typeof CompositeRouteSchema>;

/** The models a composite calls, each once, in order of first mention. */
export function compositeModels(spec: CompositeSpec): string[] {
  const names = spec.kind === 'ensemble' ? [...spec.members.map((member) => member.model), ...(spec.metaModel === undefined ? [] : [spec.metaModel.model])] : spec.stages.map((stage) => stage.model);
  return [...new Set(names)];
}

/** Members that must answer: the configured quorum, or more than half (every member for stacking). */
export function quorumOf(spec: EnsembleSpec): number {
  if (spec.quorum !== undefined) return spec.quorum;
  return spec.combiner === 'stacking' ? spec.members.length : Math.floor(spec.members.length / 2) + 1;
}

// ---------------------------------------------------------------------------------------------
// Reading values out of answers
// ---------------------------------------------------------------------------------------------

/** Thrown when an answer has no value where the extractor or mapping points. */
export class ExtractionError extends Error {
  override readonly name = 'ExtractionError';
}

/** The value at an RFC 6901 pointer, or `undefined` when there is none. */
export function readPointer(value: unknown, pointer: string): unknown {
  if (pointer === '') return value;
  let current = value;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      current = current[Number(token)];
    } else if (current !== null && typeof current === 'object' && Object.hasOwn(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return current;
}

/** The value an extractor reads from a decoded answer (parsed JSON, or CSV text). Throws {@link ExtractionError}. */
export function extract(prediction: unknown, extractor: Extractor | undefined): unknown {
  if (extractor === undefined) return prediction;
  if ('pointer' in extractor) {
    if (typeof prediction === 'string') throw new ExtractionError(`output: the answer is text, not JSON, so pointer ${JSON.stringify(extractor.pointer)} cannot be read; use csvColumn`);
    const value = readPointer(prediction, extractor.pointer);
    if (value === undefined) throw new ExtractionError(`output: the answer has nothing at ${JSON.stringify(extractor.pointer)}`);
    return value;
  }
  const row = typeof prediction === 'string' ? (prediction.split(/\r?\n/).find((line) => line.trim() !== '') ?? '') : Array.isArray(prediction) ? prediction : undefined;
  if (row === undefined) throw new ExtractionError(`output: the answer is JSON, not CSV, so column ${extractor.csvColumn} cannot be read; use pointer`);
  const cells = Array.isArray(row) ? row : row.split(',').map((cell) => cell.trim());
  if (extractor.csvColumn >= cells.length) throw new ExtractionError(`output: the answer has ${cells.length} column(s), so column ${extractor.csvColumn} does not exist`);
  return cells[extractor.csvColumn];
}

/** A score: a finite number, or text that is one (CSV cells are text). Throws {@link ExtractionError}. */
export function toScore(value: unknown): number {
  const score = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isFinite(score)) throw new ExtractionError(`output: expected a number, got ${preview(value)}`);
  return score;
}

/** A label: a string, number or boolean. Throws {@link ExtractionError}. */
export function toLabel(value: unknown): string | number | boolean {
  if (typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return value;
  throw new ExtractionError(`output: expected a label (a string, number or boolean), got ${preview(value)}`);
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// ---------------------------------------------------------------------------------------------
// Combiners
// ---------------------------------------------------------------------------------------------

export interface Vote {
  readonly value: unknown;
  readonly weight: number;
}

export interface Combined {
  /** The ensemble's answer. */
  readonly value: number | string | boolean;
  /** For votes: the share of the (weighted) votes the winner got, 0-1. */
  readonly agreement?: number;
}

/**
 * Combines the answering members' outputs. The result does not depend on the members' order: scores are
 * summed in sorted order, and a tied vote goes to the label whose JSON sorts first. Throws
 * {@link ExtractionError} naming the first output that is not a score (or label), and for no outputs.
 */
export function combine(combiner: Exclude<Combiner, 'stacking'>, votes: readonly Vote[]): Combined {
  if (votes.length === 0) throw new ExtractionError('no member answered');
  switch (combiner) {
    case 'mean':
      return { value: sortedSum(votes.map((vote) => toScore(vote.value))) / votes.length };
    case 'weighted-mean': {
      const pairs = votes.map((vote) => [toScore(vote.value), vote.weight] as const);
      const total = sortedSum(pairs.map(([, weight]) => weight));
      return { value: sortedSum(pairs.map(([score, weight]) => score * weight)) / total };
    }
    case 'median': {
      const scores = votes.map((vote) => toScore(vote.value)).sort((a, b) => a - b);
      const middle = Math.floor(scores.length / 2);
      return { value: scores.length % 2 === 1 ? (scores[middle] as number) : ((scores[middle - 1] as number) + (scores[middle] as number)) / 2 };
    }
    case 'vote':
    case 'weighted-vote': {
      const tally = new Map<string, { label: string | number | boolean; weight: number[] }>();
      for (const vote of votes) {
        const label = toLabel(vote.value);
        const key = JSON.stringify(label);
        const entry = tally.get(key) ?? { label, weight: [] };
        entry.weight.push(combiner === 'vote' ? 1 : vote.weight);
        tally.set(key, entry);
      }
      const ranked = [...tally.entries()].map(([key, entry]) => ({ key, label: entry.label, weight: sortedSum(entry.weight) }));
      ranked.sort((a, b) => b.weight - a.weight || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const total = sortedSum(ranked.map((entry) => entry.weight));
      const winner = ranked[0] as (typeof ranked)[number];
      return { value: winner.label, agreement: winner.weight / total };
    }
  }
}

/** Sum in ascending order: the same numbers give the same sum whatever order they came in. */
function sortedSum(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b).reduce((sum, value) => sum + value, 0);
}

/** The stacking meta-model's payload: the members' outputs in member order, as a JSON array or one CSV row. */
export function stackingPayload(outputs: readonly unknown[], contentType: 'application/json' | 'text/csv'): unknown {
  if (contentType === 'application/json') return [...outputs];
  return outputs.map((output) => {
    const cell = typeof output === 'string' ? output : JSON.stringify(output);
    if (/[",\r\n]/.test(cell)) throw new ExtractionError(`output: ${preview(output)} cannot be a CSV cell of the meta-model's input`);
    return cell;
  }).join(',');
}

// ---------------------------------------------------------------------------------------------
// Cascades and chains
// ---------------------------------------------------------------------------------------------

/** Whether a cascade stage's answer settles the request: its confidence, read by the extractor, is at least the threshold. */
export function isConfident(prediction: unknown, extractor: Extractor, threshold: number): { readonly confident: boolean; readonly confidence?: number; readonly problem?: string } {
  try {
    const confidence = toScore(extract(prediction, extractor));
    return { confident: confidence >= threshold, confidence };
  } catch (error) {
    // An answer whose confidence cannot be read is not confident: the next stage answers.
    return { confident: false, problem: (error as Error).message };
  }
}

/** What a chain stage's input pointers read from. */
export interface ChainContext {
  readonly request: unknown;
  readonly previous?: unknown;
  readonly stages: readonly unknown[];
}

/** A chain stage's payload. Throws {@link ExtractionError} naming the pointer that reads nothing. */
export function chainInput(input: ChainInput | undefined, context: ChainContext): unknown {
  const root = { request: context.request, previous: context.previous, stages: context.stages };
  const read = (pointer: string, field?: string): unknown => {
    const value = readPointer(root, pointer);
    if (value === undefined) throw new ExtractionError(`input${field === undefined ? '' : `.${field}`}: nothing at ${JSON.stringify(pointer)} (pointers read /request, /previous and /stages/<n>)`);
    return value;
  };
  if (input === undefined) return context.stages.length === 0 ? context.request : context.previous;
  if (typeof input === 'string') return read(input);
  return Object.fromEntries(Object.entries(input).map(([field, pointer]) => [field, read(pointer, field)]));
}
