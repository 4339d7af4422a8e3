import { Duration } from 'aws-cdk-lib';
import { z } from 'zod';
import { compositeProblems, EnsembleCombiner, OutputField, type CompositeDefinition } from '../lib/serving/composite-route';

/**
 * Composite models of the environment's inference API (seed patterns 14, Ensemble Methods, and 20,
 * Multi-stage Prediction): each one is served at `POST /models/{name}/predict` beside the families, and
 * calls the families' endpoints through their own routes (cache, circuit breaker, fallback).
 *
 * The schema checks the shape of each entry; the rules (how many members, quorum, thresholds on every
 * cascade stage but the last, pointers) are CompositeRoute's own (`compositeProblems`), so the config and
 * the construct cannot disagree, and the rules across the config (members name families and their
 * production variants) are in config/schema.ts.
 */

/** Where a value is in a model's answer: `{ jsonPointer: '/predictions/0/score' }` or `{ csvColumn: 0 }`. */
const outputFieldSchema = z.union([z.strictObject({ jsonPointer: z.string() }), z.strictObject({ csvColumn: z.number() })], {
  error: 'must be { jsonPointer: "/path/in/the/answer" } or { csvColumn: <column from 0> }',
});

/** A family the composite calls, optionally one production variant of its endpoint. */
const partSchema = {
  /** A model family of this config. */
  model: z.string(),
  variant: z.string().optional(),
};

const timeoutMs = z.number().optional();

const ensembleSchema = z.strictObject({
  kind: z.literal('ensemble'),
  name: z.string(),
  /** 2-10 members, called concurrently. */
  members: z.array(
    z.strictObject({
      ...partSchema,
      /** A container of a multi-container endpoint in Direct mode. */
      container: z.string().optional(),
      weight: z.number().optional(),
    }),
  ),
  combiner: z.enum(Object.values(EnsembleCombiner) as [`${EnsembleCombiner}`, ...Array<`${EnsembleCombiner}`>]),
  output: outputFieldSchema.optional(),
  /** Members that must answer (default: more than half; every member for stacking). */
  quorum: z.number().optional(),
  metaModel: z.strictObject({ ...partSchema, contentType: z.enum(['application/json', 'text/csv']).optional() }).optional(),
  /** Each member's call, 10-25000 ms (default 3000). */
  timeoutMs,
});

const cascadeSchema = z.strictObject({
  kind: z.literal('cascade'),
  name: z.string(),
  /** 2-5 stages, cheapest first; every one but the last has a confidence and a threshold. */
  stages: z.array(z.strictObject({ ...partSchema, confidence: outputFieldSchema.optional(), threshold: z.number().optional() })),
  timeoutMs,
});

const chainSchema = z.strictObject({
  kind: z.literal('chain'),
  name: z.string(),
  /** 2-5 stages in order; `input` reads each stage's payload from { request, previous, stages } by JSON pointers. */
  stages: z.array(z.strictObject({ ...partSchema, input: z.union([z.string(), z.record(z.string(), z.string())]).optional() })),
  timeoutMs,
});

export const compositeSchema = z.discriminatedUnion('kind', [ensembleSchema, cascadeSchema, chainSchema], {
  error: 'must be ensemble, cascade or chain',
});

export type CompositeConfig = z.output<typeof compositeSchema>;

const outputField = (field: z.output<typeof outputFieldSchema>): OutputField =>
  'jsonPointer' in field ? OutputField.jsonPointer(field.jsonPointer) : OutputField.csvColumn(field.csvColumn);

/** The construct's definition of a composite of the config. */
export function compositeDefinition(composite: CompositeConfig): CompositeDefinition {
  const timeout = composite.timeoutMs === undefined ? {} : { timeout: Duration.millis(composite.timeoutMs) };
  switch (composite.kind) {
    case 'ensemble':
      return {
        kind: 'ensemble',
        members: composite.members,
        combiner: composite.combiner as EnsembleCombiner,
        ...(composite.output === undefined ? {} : { output: outputField(composite.output) }),
        ...(composite.quorum === undefined ? {} : { quorum: composite.quorum }),
        ...(composite.metaModel === undefined ? {} : { metaModel: composite.metaModel }),
        ...timeout,
      };
    case 'cascade':
      return {
        kind: 'cascade',
        stages: composite.stages.map(({ confidence, ...stage }) => ({ ...stage, ...(confidence === undefined ? {} : { confidence: outputField(confidence) }) })),
        ...timeout,
      };
    case 'chain':
      return { kind: 'chain', stages: composite.stages, ...timeout };
  }
}

/**
 * What is wrong with one composite of the config, as paths under the composite and messages: the
 * construct's rules, then whether its members are families of the config and their production variants.
 */
export function checkComposite(
  composite: CompositeConfig,
  families: ReadonlyMap<string, readonly string[]>,
  /** Families whose own config has problems: their variants are unknown, and they are not reported again. */
  unchecked: ReadonlySet<string> = new Set(),
): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  // A timeout of whole milliseconds is checked here: Duration.millis would throw on a fraction.
  if (composite.timeoutMs !== undefined && !(Number.isInteger(composite.timeoutMs) && composite.timeoutMs >= 10 && composite.timeoutMs <= 25_000)) {
    issues.push({ path: ['timeoutMs'], message: `must be whole milliseconds from 10 to 25000 (API Gateway gives up at 29 s); got ${composite.timeoutMs}` });
  }
  const definition = compositeDefinition({ ...composite, timeoutMs: undefined });
  for (const problem of compositeProblems(composite.name, definition)) {
    // "members[0].weight: must be ..." → path [members, 0, weight], message "must be ...".
    const match = /^([A-Za-z]+(?:\[\d+\])?(?:\.[A-Za-z]+)*)(?::\s)([\s\S]*)$/.exec(problem);
    if (match === null) {
      issues.push({ path: [], message: problem });
      continue;
    }
    const path = match[1].split(/[.[\]]+/).filter((part) => part !== '').map((part) => (/^\d+$/.test(part) ? Number(part) : part));
    issues.push({ path, message: match[2] });
  }
  const parts =
    composite.kind === 'ensemble'
      ? [...composite.members.map((member, index) => ({ path: ['members', index], ...member })), ...(composite.metaModel === undefined ? [] : [{ path: ['metaModel'], ...composite.metaModel }])]
      : composite.stages.map((stage, index) => ({ path: ['stages', index], ...stage }));
  for (const part of parts) {
    const variants = families.get(part.model);
    const at = [...part.path, 'model'].join('.');
    if (unchecked.has(part.model) || issues.some((issue) => issue.path.join('.') === at)) continue;
    if (variants === undefined) {
      issues.push({ path: [...part.path, 'model'], message: `'${part.model}' is not a model family of this config (${[...families.keys()].join(', ')})` });
    } else if (part.variant !== undefined && !variants.includes(part.variant)) {
      issues.push({ path: [...part.path, 'variant'], message: `'${part.variant}' is not a production variant of ${part.model} (${variants.join(', ')})` });
    }
  }
  return issues;
}
