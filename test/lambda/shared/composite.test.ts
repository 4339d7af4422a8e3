// The pure parts of composite models: the route schema, JSON pointers and CSV columns, the combiners,
// the cascade's confidence test and the chain's input mapping.
import fc from 'fast-check';
import {
  chainInput,
  combine,
  CompositeRouteSchema,
  compositeModels,
  extract,
  ExtractionError,
  isConfident,
  quorumOf,
  readPointer,
  stackingPayload,
  type CompositeSpec,
  type EnsembleSpec,
} from '../../../lambda/shared/composite';
import { formatIssues, parseRouteEntry } from '../../../lambda/shared/inference';

const ensemble = (extra: Partial<EnsembleSpec> = {}): EnsembleSpec => ({
  kind: 'ensemble',
  members: [{ model: 'churn-a' }, { model: 'churn-b' }, { model: 'churn-c' }],
  combiner: 'mean',
  ...extra,
});

function problems(document: unknown): string {
  const parsed = CompositeRouteSchema.safeParse(document);
  return parsed.success ? '' : formatIssues(parsed.error.issues, '(root)');
}

describe('composite route schema', () => {
  test('accepts an ensemble, a cascade and a chain', () => {
    expect(problems({ composite: ensemble({ output: { pointer: '/predictions/0/score' }, quorum: 2, timeoutMs: 500 }) })).toBe('');
    expect(problems({ composite: { kind: 'cascade', stages: [{ model: 'lite', confidence: { csvColumn: 1 }, threshold: 0.9 }, { model: 'full' }] } })).toBe('');
    expect(problems({ composite: { kind: 'chain', stages: [{ model: 'candidates' }, { model: 'ranker', input: { user: '/request/user', items: '/previous/items' } }] } })).toBe('');
  });

  test('names every problem by its field', () => {
    const text = problems({
      composite: {
        kind: 'ensemble',
        members: [{ model: 'A!' }, { model: 'b', weight: 0 }, { model: 'b', weight: 0 }],
        combiner: 'stacking',
        quorum: 2,
        output: { pointer: 'score' },
      },
    });
    expect(text).toContain('composite.members[0].model: must be a model name');
    expect(text).toContain('composite.members[1].weight: must be above 0');
    expect(text).toContain('composite.output');
    // The refinements run once the fields parse: they are checked on a document whose fields do, all at once.
    const refined = problems({ composite: { kind: 'ensemble', members: [{ model: 'aa' }, { model: 'bb' }, { model: 'bb' }], combiner: 'stacking', quorum: 2 } });
    for (const message of [
      'composite.metaModel: is required with the stacking combiner',
      'composite.quorum: must be every member with the stacking combiner',
      'composite.members[2]: repeats an earlier member',
    ]) {
      expect(refined).toContain(message);
    }
    expect(problems({ composite: ensemble({ quorum: 4 }) })).toContain('composite.quorum: must be at most the number of members (3)');
    expect(problems({ composite: ensemble({ metaModel: { model: 'meta' } }) })).toContain('composite.metaModel: is only used by the stacking combiner');
    expect(problems({ composite: { kind: 'ensemble', members: [{ model: 'aa' }], combiner: 'mean' } })).toContain('composite.members: must list at least 2 members');
    expect(problems({ composite: { kind: 'bagging' } })).toContain('composite.kind');
  });

  test('a cascade needs a confidence and threshold on every stage but the last, and none on the last', () => {
    const text = problems({ composite: { kind: 'cascade', stages: [{ model: 'aa' }, { model: 'bb', confidence: { pointer: '/p' }, threshold: 1 }] } });
    expect(text).toContain('composite.stages[0].confidence: is required on every stage but the last');
    expect(text).toContain('composite.stages[0].threshold: is required on every stage but the last');
    expect(text).toContain('composite.stages[1]: is the last stage');
  });

  test('a route parameter is read with the schema its shape calls for', () => {
    const endpoint = parseRouteEntry({ endpointName: 'e', variants: {} });
    expect(endpoint.success).toBe(false);
    expect(endpoint.success ? '' : formatIssues(endpoint.issues, '(root)')).toBe('variants: must define at least one variant');
    const composite = parseRouteEntry({ composite: { kind: 'chain', stages: [] } });
    expect(composite.success ? '' : formatIssues(composite.issues, '(root)')).toBe('composite.stages: must list at least 2 stages');
    expect(parseRouteEntry({ composite: ensemble() })).toMatchObject({ success: true, data: { composite: { kind: 'ensemble' } } });
  });

  test('the models a composite calls, and its quorum', () => {
    const stacked: CompositeSpec = { ...ensemble({ combiner: 'stacking', metaModel: { model: 'meta' } }) };
    expect(compositeModels(stacked)).toEqual(['churn-a', 'churn-b', 'churn-c', 'meta']);
    expect(compositeModels({ kind: 'ensemble', members: [{ model: 'aa', variant: 'x' }, { model: 'aa', variant: 'y' }], combiner: 'vote' })).toEqual(['aa']);
    expect(quorumOf(ensemble())).toBe(2);
    expect(quorumOf({ ...ensemble(), members: [...ensemble().members, { model: 'churn-d' }] })).toBe(3);
    expect(quorumOf(stacked as EnsembleSpec)).toBe(3);
    expect(quorumOf(ensemble({ quorum: 1 }))).toBe(1);
  });
});

describe('reading values out of answers', () => {
  test('JSON pointers follow RFC 6901', () => {
    const document = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'm~n': 8, nested: { score: 0.3 } };
    expect(readPointer(document, '')).toBe(document);
    expect(readPointer(document, '/foo/0')).toBe('bar');
    expect(readPointer(document, '/a~1b')).toBe(1);
    expect(readPointer(document, '/m~0n')).toBe(8);
    expect(readPointer(document, '/')).toBe(0);
    expect(readPointer(document, '/nested/score')).toBe(0.3);
    expect(readPointer(document, '/foo/01')).toBeUndefined();
    expect(readPointer(document, '/foo/2')).toBeUndefined();
    expect(readPointer(document, '/missing/x')).toBeUndefined();
    expect(readPointer({ toString: 1 }, '/constructor')).toBeUndefined();
  });

  test('extractors read pointers from JSON and columns from CSV, and say why they cannot', () => {
    expect(extract({ predictions: [{ score: 0.7 }] }, { pointer: '/predictions/0/score' })).toBe(0.7);
    expect(extract('0.1,0.9\n', { csvColumn: 1 })).toBe('0.9');
    expect(extract([0.1, 0.9], { csvColumn: 0 })).toBe(0.1);
    expect(extract(42, undefined)).toBe(42);
    expect(() => extract('0.1', { pointer: '/score' })).toThrow('output: the answer is text, not JSON');
    expect(() => extract({ score: 1 }, { csvColumn: 0 })).toThrow('output: the answer is JSON, not CSV');
    expect(() => extract('0.1,0.2', { csvColumn: 5 })).toThrow('output: the answer has 2 column(s), so column 5 does not exist');
    expect(() => extract({}, { pointer: '/score' })).toThrow(ExtractionError);
  });
});

describe('combiners', () => {
  const votes = (values: unknown[], weights: number[] = []) => values.map((value, index) => ({ value, weight: weights[index] ?? 1 }));

  test('mean, weighted mean and median of scores (CSV cells included)', () => {
    expect(combine('mean', votes([0.2, '0.4', 0.6])).value).toBeCloseTo(0.4, 12);
    expect(combine('weighted-mean', votes([0, 1], [3, 1])).value).toBe(0.25);
    expect(combine('median', votes([5, 1, 3])).value).toBe(3);
    expect(combine('median', votes([4, 1, 3, 2])).value).toBe(2.5);
    expect(() => combine('mean', votes([0.2, 'high']))).toThrow('output: expected a number, got "high"');
    expect(() => combine('mean', [])).toThrow('no member answered');
  });

  test('majority and weighted votes, with the share of the votes the winner got', () => {
    expect(combine('vote', votes(['churn', 'stay', 'churn']))).toEqual({ value: 'churn', agreement: 2 / 3 });
    expect(combine('weighted-vote', votes(['churn', 'stay', 'churn'], [1, 5, 1]))).toEqual({ value: 'stay', agreement: 5 / 7 });
    // 1 and "1" are different labels.
    expect(combine('vote', votes([1, '1', 1])).value).toBe(1);
    expect(() => combine('vote', votes([{ label: 'x' }]))).toThrow('output: expected a label');
  });

  test('property: no combiner depends on the order of the members', () => {
    const score = fc.double({ min: -1e6, max: 1e6, noNaN: true });
    const label = fc.constantFrom('a', 'b', 'c', 1, 2, true);
    const weight = fc.double({ min: 0.01, max: 100, noNaN: true });
    fc.assert(
      fc.property(fc.array(fc.tuple(score, weight), { minLength: 1, maxLength: 10 }), fc.array(fc.nat(), { minLength: 10, maxLength: 10 }), (members, order) => {
        const shuffled = shuffle(members, order);
        for (const combiner of ['mean', 'weighted-mean', 'median'] as const) {
          expect(combine(combiner, members.map(([value, w]) => ({ value, weight: w })))).toEqual(combine(combiner, shuffled.map(([value, w]) => ({ value, weight: w }))));
        }
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(label, weight), { minLength: 1, maxLength: 10 }), fc.array(fc.nat(), { minLength: 10, maxLength: 10 }), (members, order) => {
        const shuffled = shuffle(members, order);
        for (const combiner of ['vote', 'weighted-vote'] as const) {
          expect(combine(combiner, members.map(([value, w]) => ({ value, weight: w })))).toEqual(combine(combiner, shuffled.map(([value, w]) => ({ value, weight: w }))));
        }
      }),
    );
  });

  test('property: a mean and a median lie between the smallest and largest score; identical scores combine to themselves', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 10 }), (scores) => {
        const input = scores.map((value) => ({ value, weight: 1 }));
        for (const combiner of ['mean', 'weighted-mean', 'median'] as const) {
          const value = combine(combiner, input).value as number;
          expect(value).toBeGreaterThanOrEqual(Math.min(...scores) - 1e-9);
          expect(value).toBeLessThanOrEqual(Math.max(...scores) + 1e-9);
          expect(combine(combiner, scores.map(() => ({ value: scores[0], weight: 2 }))).value).toBeCloseTo(scores[0] as number, 6);
        }
      }),
    );
  });

  test('stacking sends the outputs as a JSON array or one CSV row', () => {
    expect(stackingPayload([0.1, '0.2', 3], 'application/json')).toEqual([0.1, '0.2', 3]);
    expect(stackingPayload([0.1, '0.2', 3], 'text/csv')).toBe('0.1,0.2,3');
    expect(() => stackingPayload(['a,b'], 'text/csv')).toThrow('cannot be a CSV cell');
  });
});

describe('cascades and chains', () => {
  test('a stage is confident when its confidence reaches the threshold; unreadable is not confident', () => {
    expect(isConfident({ p: 0.95 }, { pointer: '/p' }, 0.9)).toEqual({ confident: true, confidence: 0.95 });
    expect(isConfident({ p: 0.9 }, { pointer: '/p' }, 0.9)).toEqual({ confident: true, confidence: 0.9 });
    expect(isConfident('label,0.5', { csvColumn: 1 }, 0.9)).toEqual({ confident: false, confidence: 0.5 });
    expect(isConfident({}, { pointer: '/p' }, 0.9)).toEqual({ confident: false, problem: 'output: the answer has nothing at "/p"' });
  });

  test('a chain stage reads its input from the request, the previous answer and earlier ones', () => {
    const context = { request: { user: 'u-1', k: 3 }, previous: { items: ['a', 'b'] }, stages: [{ items: ['a', 'b'] }] };
    expect(chainInput(undefined, { request: { x: 1 }, stages: [] })).toEqual({ x: 1 });
    expect(chainInput(undefined, context)).toEqual({ items: ['a', 'b'] });
    expect(chainInput('/previous/items', context)).toEqual(['a', 'b']);
    expect(chainInput({ user: '/request/user', candidates: '/stages/0/items' }, context)).toEqual({ user: 'u-1', candidates: ['a', 'b'] });
    expect(() => chainInput({ user: '/request/name' }, context)).toThrow('input.user: nothing at "/request/name"');
  });
});

function shuffle<T>(items: readonly T[], order: readonly number[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = (order[index % order.length] as number) % (index + 1);
    [copy[index], copy[other]] = [copy[other] as T, copy[index] as T];
  }
  return copy;
}
