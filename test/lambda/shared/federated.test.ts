// Federated learning aggregation against independently computed reference values
// (test/fixtures/federated-reference.json, numpy, made by test/fixtures/federated_reference.py; each value
// names its source), fast-check properties, and the validation, quorum and convergence rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  aggregate,
  aggregateMetrics,
  applyUpdate,
  checkRoundQuorum,
  clipToNorm,
  coordinateMedian,
  decideConvergence,
  dpFedAvg,
  FederatedInputError,
  fedAvg,
  fedAvgWeights,
  gaussianNoise,
  l2Norm,
  nextUniform,
  parseAggregationSpec,
  parseClientResults,
  RoundFailedError,
  seededRandom,
  seedState,
  splitMix64,
  trimCount,
  trimmedMean,
  xoshiro128StarStar,
  type AggregationSpec,
  type ClientResult,
} from '../../../lambda/shared/federated';
import reference from '../../fixtures/federated-reference.json';

const REL_TOL = reference.relTol;

/** |actual − expected| ≤ relTol·max(|expected|, scale): see the fixture's `tolerance`. */
function expectNear(actual: number, expected: number, label: string, scale = 0, relTol = REL_TOL): void {
  const allowed = relTol * Math.max(Math.abs(expected), scale);
  if (!(Math.abs(actual - expected) <= allowed)) {
    throw new Error(`${label}: expected ${expected} within ${allowed}, got ${actual} (error ${Math.abs(actual - expected)})`);
  }
}

function expectVectorNear(actual: readonly number[], expected: readonly number[], label: string, scale?: readonly number[], relTol = REL_TOL): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((value, c) => expectNear(actual[c]!, value, `${label}[${c}]`, scale?.[c] ?? 0, relTol));
}

/** Runs fn and returns the FederatedInputError's problems as `path: message` lines. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FederatedInputError);
    return (error as FederatedInputError).problems.map((problem) => `${problem.path}: ${problem.message}`);
  }
  throw new Error('expected a FederatedInputError, but nothing was thrown');
}

const cases = reference.cases as unknown as readonly {
  name: string;
  clients: ClientResult[];
  fedAvg: { weights: number[]; expected: number[]; scale: number[] };
  median: { expected: number[] };
  trimmedMean: { cases: { beta: number; trimmed: number; expected: number[]; scale: number[] }[] };
  clipping: { clipNorm: number; norms: number[]; clipped: number[][]; clippedMean: number[]; clippedMeanScale: number[] };
}[];

// ---------------------------------------------------------------------------------------------------
// Reference values
// ---------------------------------------------------------------------------------------------------

describe('reference values (numpy, test/fixtures/federated-reference.json)', () => {
  test('the fixture holds the committed generator script and covers the required shapes', () => {
    const script = readFileSync(join(__dirname, '..', '..', 'fixtures', 'federated_reference.py'), 'utf8');
    expect(reference.generatorScript).toEqual(script.split('\n').slice(0, -1));
    expect(reference.generatedWith).toMatch(/numpy 2\./);
    expect(cases.length).toBeGreaterThanOrEqual(10);
    for (const c of cases) {
      expect(c.clients.length).toBeGreaterThanOrEqual(2);
      expect(c.clients.length).toBeLessThanOrEqual(10);
      expect(c.clients[0]!.update.length).toBeGreaterThanOrEqual(1);
      expect(c.clients[0]!.update.length).toBeLessThanOrEqual(50);
    }
    const lengths = cases.map((c) => c.clients[0]!.update.length);
    expect(Math.min(...lengths)).toBe(1);
    expect(Math.max(...lengths)).toBe(50);
    expect(cases.some((c) => c.clients.some((client) => client.sampleCount === 0))).toBe(true);
    // Some updates are clipped and some are not.
    const clippedOrNot = cases.flatMap((c) => c.clipping.norms.map((norm) => norm > c.clipping.clipNorm));
    expect(clippedOrNot).toContain(true);
    expect(clippedOrNot).toContain(false);
  });

  test.each(cases)('FedAvg weights and mean: $name', (c) => {
    expectVectorNear(fedAvgWeights(c.clients), c.fedAvg.weights, 'weights');
    expectVectorNear(fedAvg(c.clients), c.fedAvg.expected, 'fedAvg', c.fedAvg.scale);
    expectVectorNear(aggregate(c.clients, { aggregator: 'fedavg' }).update, c.fedAvg.expected, 'aggregate fedavg', c.fedAvg.scale);
  });

  test.each(cases)('coordinate-wise median: $name', (c) => {
    expectVectorNear(coordinateMedian(c.clients), c.median.expected, 'median');
    expectVectorNear(aggregate(c.clients, { aggregator: 'median' }).update, c.median.expected, 'aggregate median');
  });

  test.each(cases)('trimmed mean for β in 0 … 0.49: $name', (c) => {
    const contributing = c.clients.filter((client) => client.sampleCount > 0).length;
    for (const t of c.trimmedMean.cases) {
      expect(trimCount(t.beta, contributing)).toBe(t.trimmed);
      expectVectorNear(trimmedMean(c.clients, t.beta), t.expected, `trimmedMean(β = ${t.beta})`, t.scale);
      const result = aggregate(c.clients, { aggregator: 'trimmed-mean', trimFraction: t.beta });
      expect(result.trim).toEqual({ trimFraction: t.beta, trimmed: t.trimmed });
      expectVectorNear(result.update, t.expected, `aggregate trimmed-mean(β = ${t.beta})`, t.scale);
    }
  });

  test.each(cases)('norms, clipping and the clipped mean (DP with σ = 0): $name', (c) => {
    const { clipNorm } = c.clipping;
    c.clients.forEach((client, i) => {
      expectNear(l2Norm(client.update), c.clipping.norms[i]!, `norm of clients[${i}]`);
      expectVectorNear(clipToNorm(client.update, clipNorm), c.clipping.clipped[i]!, `clipped clients[${i}]`);
    });
    const dp = dpFedAvg(c.clients, { clipNorm, noiseMultiplier: 0 }, seededRandom(1));
    expectVectorNear(dp.update, c.clipping.clippedMean, 'clipped mean', c.clipping.clippedMeanScale);
    const viaSpec = aggregate(c.clients, { aggregator: 'fedavg', privacy: { clipNorm, noiseMultiplier: 0 } }, seededRandom(1));
    expect(viaSpec.update).toEqual(dp.update);
  });

  describe('the seeded random source, against a Python implementation of the reference C code', () => {
    test('SplitMix64', () => {
      let state = BigInt(reference.random.splitmix64.seed);
      for (const expected of reference.random.splitmix64.outputs) {
        const step = splitMix64(state);
        expect(step.value).toBe(BigInt(expected));
        state = step.state;
      }
    });

    test('xoshiro128** from the state [1, 2, 3, 4]', () => {
      const random = xoshiro128StarStar(reference.random.xoshiro128ss.state as [number, number, number, number]);
      expect(reference.random.xoshiro128ss.outputs.map(() => random.nextUint32())).toEqual(reference.random.xoshiro128ss.outputs);
    });

    test.each(reference.random.seeded)('seed $seed: state, integers, uniforms (exactly) and Box–Muller normals', (s) => {
      expect(seedState(s.seed)).toEqual(s.state);
      const integers = seededRandom(s.seed);
      expect(s.uint32.map(() => integers.nextUint32())).toEqual(s.uint32);
      const uniforms = seededRandom(s.seed);
      expect(s.uniforms.map(() => nextUniform(uniforms))).toEqual(s.uniforms);
      // log, cos and sin of V8 and of the C library may differ in the last bit.
      expectVectorNear(gaussianNoise(seededRandom(s.seed), s.normals.length, 1), s.normals, 'normals', undefined, 1e-12);
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

const value = fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });

/** 1 … 8 clients of one dimension 1 … 12, at least one with samples. */
const clientsArb = fc
  .record({ d: fc.integer({ min: 1, max: 12 }), k: fc.integer({ min: 1, max: 8 }) })
  .chain(({ d, k }) =>
    fc.array(
      fc.record({ sampleCount: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 })), update: fc.array(value, { minLength: d, maxLength: d }) }),
      { minLength: k, maxLength: k },
    ),
  )
  .filter((clients) => clients.some((client) => client.sampleCount > 0))
  .map((clients): ClientResult[] => clients.map((client, i) => ({ clientId: `silo-${i}`, ...client })));

const specArb: fc.Arbitrary<AggregationSpec> = fc.oneof(
  fc.constant({ aggregator: 'fedavg' as const }),
  fc.constant({ aggregator: 'median' as const }),
  fc.double({ min: 0, max: 0.49, noNaN: true }).map((trimFraction) => ({ aggregator: 'trimmed-mean' as const, trimFraction })),
);

/** Per coordinate, Σ w_i·|u_ic| over the clients with samples: the scale of FedAvg's rounding error. */
function fedAvgScale(clients: readonly ClientResult[]): number[] {
  const weights = fedAvgWeights(clients);
  return clients[0]!.update.map((_, c) => clients.reduce((sum, client, i) => sum + weights[i]! * Math.abs(client.update[c]!), 0));
}

const RUNS = { numRuns: 150 };

describe('properties', () => {
  test('FedAvg weights are ≥ 0, 0 exactly for clients without samples, and sum to one', () => {
    fc.assert(
      fc.property(clientsArb, (clients) => {
        const weights = fedAvgWeights(clients);
        expect(weights).toHaveLength(clients.length);
        clients.forEach((client, i) => (client.sampleCount === 0 ? expect(weights[i]).toBe(0) : expect(weights[i]).toBeGreaterThan(0)));
        expect(Math.abs(weights.reduce((sum, w) => sum + w, 0) - 1)).toBeLessThanOrEqual(1e-15 * clients.length);
      }),
      RUNS,
    );
  });

  test('identical updates aggregate to themselves, exactly, under every aggregator (DP off)', () => {
    fc.assert(
      fc.property(clientsArb, specArb, (clients, spec) => {
        const same = clients.map((client) => ({ ...client, update: clients[0]!.update }));
        expect(aggregate(same, spec).update).toEqual(clients[0]!.update);
      }),
      RUNS,
    );
  });

  test('a client with no samples has no weight: adding it anywhere changes no aggregate (nor the DP one)', () => {
    fc.assert(
      fc.property(clientsArb, specArb, fc.nat(), fc.array(value, { minLength: 12, maxLength: 12 }), (clients, spec, at, junk) => {
        const position = at % (clients.length + 1);
        const empty: ClientResult = { clientId: 'empty', sampleCount: 0, update: junk.slice(0, clients[0]!.update.length) };
        const withEmpty = [...clients.slice(0, position), empty, ...clients.slice(position)];
        const result = aggregate(withEmpty, spec);
        expect(result.update).toEqual(aggregate(clients, spec).update);
        expect(result.ignoredClientIds).toContain('empty');
        const privacy = { clipNorm: 1, noiseMultiplier: 1.1 };
        expect(dpFedAvg(withEmpty, privacy, seededRandom(7))).toEqual(dpFedAvg(clients, privacy, seededRandom(7)));
      }),
      RUNS,
    );
  });

  test('FedAvg is permutation-invariant (to rounding); median and trimmed mean exactly', () => {
    const shuffled = clientsArb.chain((clients) => fc.tuple(fc.constant(clients), fc.shuffledSubarray(clients, { minLength: clients.length, maxLength: clients.length })));
    fc.assert(
      fc.property(shuffled, fc.double({ min: 0, max: 0.49, noNaN: true }), ([clients, permuted], beta) => {
        expectVectorNear(fedAvg(permuted), fedAvg(clients), 'permuted fedAvg', fedAvgScale(clients), 1e-14);
        expect(coordinateMedian(permuted)).toEqual(coordinateMedian(clients));
        expect(trimmedMean(permuted, beta)).toEqual(trimmedMean(clients, beta));
      }),
      RUNS,
    );
  });

  test('FedAvg, median and trimmed mean lie within the coordinate-wise min and max of the clients with samples', () => {
    fc.assert(
      fc.property(clientsArb, specArb, (clients, spec) => {
        const contributing = clients.filter((client) => client.sampleCount > 0);
        aggregate(clients, spec).update.forEach((result, c) => {
          const column = contributing.map((client) => client.update[c]!);
          expect(result).toBeGreaterThanOrEqual(Math.min(...column));
          expect(result).toBeLessThanOrEqual(Math.max(...column));
        });
      }),
      RUNS,
    );
  });

  test('the median is the middle value of the sorted column, and trimming every outlier ignores it', () => {
    const clients: ClientResult[] = [1, 2, 3, 4, 1000].map((v, i) => ({ clientId: `c${i}`, sampleCount: 10, update: [v, -v] }));
    expect(coordinateMedian(clients)).toEqual([3, -3]);
    expect(trimmedMean(clients, 0.2)).toEqual([3, -3]); // t = ⌊0.2·5⌋ = 1: mean of 2, 3, 4
    expect(coordinateMedian(clients.slice(0, 4))).toEqual([2.5, -2.5]);
    expect(fedAvg(clients)[0]).toBeCloseTo(202, 12);
  });

  test('clipping never increases the norm, bounds it by C, leaves short updates unchanged and keeps the direction', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 30 }), fc.double({ min: 1e-3, max: 1e7, noNaN: true }), (update, clipNorm) => {
        const norm = l2Norm(update);
        const clipped = clipToNorm(update, clipNorm);
        const clippedNorm = l2Norm(clipped);
        expect(clippedNorm).toBeLessThanOrEqual(norm * (1 + 1e-15));
        expect(clippedNorm).toBeLessThanOrEqual(clipNorm * (1 + 1e-15));
        if (norm <= clipNorm) {
          expect(clipped).toEqual(update);
        } else {
          expectNear(clippedNorm, clipNorm, 'norm of the clipped update', 0, 1e-14);
          const factor = clipNorm / norm;
          clipped.forEach((v, c) => expect(v).toBe(update[c]! * factor));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('l2Norm neither overflows nor underflows', () => {
    expectNear(l2Norm([3e200, 4e200]), 5e200, 'big', 0, 1e-15);
    expectNear(l2Norm([3e-200, -4e-200]), 5e-200, 'small', 0, 1e-15);
    expect(l2Norm([0, 0])).toBe(0);
    expect(clipToNorm([0, 0], 1)).toEqual([0, 0]);
  });

  test('with the same seed the DP result is reproducible; another seed gives other noise', () => {
    fc.assert(
      fc.property(clientsArb, fc.integer({ min: 0, max: 2 ** 40 }), fc.double({ min: 0.01, max: 5, noNaN: true }), (clients, seed, sigma) => {
        const privacy = { clipNorm: 10, noiseMultiplier: sigma };
        const first = dpFedAvg(clients, privacy, seededRandom(seed));
        expect(dpFedAvg(clients, privacy, seededRandom(seed))).toEqual(first);
        expect(dpFedAvg(clients, privacy, seededRandom(seed + 1)).update).not.toEqual(first.update);
      }),
      { numRuns: 60 },
    );
  });

  test('with σ = 0 the DP result is the uniform mean of the clipped updates', () => {
    fc.assert(
      fc.property(clientsArb, fc.double({ min: 1e-3, max: 1e7, noNaN: true }), (clients, clipNorm) => {
        const contributing = clients.filter((client) => client.sampleCount > 0);
        const clipped = contributing.map((client) => clipToNorm(client.update, clipNorm));
        const expected = clipped[0]!.map((_, c) => clipped.reduce((sum, u) => sum + u[c]!, 0) / clipped.length);
        const scale = clipped[0]!.map((_, c) => clipped.reduce((sum, u) => sum + Math.abs(u[c]!), 0) / clipped.length);
        const result = dpFedAvg(clients, { clipNorm, noiseMultiplier: 0 }, seededRandom(3));
        expectVectorNear(result.update, expected, 'clipped mean', scale, 1e-14);
        expect(result.privacy).toMatchObject({ noiseMultiplier: 0, noiseStandardDeviation: 0, clients: contributing.length });
      }),
      RUNS,
    );
  });

  test('the DP noise has mean 0 and standard deviation σ·C/k (fixed seeds, loose bounds)', () => {
    const d = 20_000;
    const rows = [
      { k: 4, sigma: 1.1, clipNorm: 0.5, seed: 11 },
      { k: 10, sigma: 0.7, clipNorm: 2, seed: 12 },
      { k: 1, sigma: 3, clipNorm: 1, seed: 13 },
    ];
    for (const { k, sigma, clipNorm, seed } of rows) {
      const random = seededRandom(seed * 1000);
      const clients: ClientResult[] = Array.from({ length: k }, (_, i) => ({ clientId: `c${i}`, sampleCount: 1 + i, update: gaussianNoise(random, d, 0.3) }));
      const clean = dpFedAvg(clients, { clipNorm, noiseMultiplier: 0 }, seededRandom(seed)).update;
      const noisy = dpFedAvg(clients, { clipNorm, noiseMultiplier: sigma }, seededRandom(seed));
      const expectedSd = (sigma * clipNorm) / k;
      expect(noisy.privacy).toEqual({ mechanism: 'gaussian', noiseMultiplier: sigma, clipNorm, clients: k, noiseStandardDeviation: expectedSd, weighting: 'uniform', randomSource: 'xoshiro128** (seeded with SplitMix64)' });
      const noise = noisy.update.map((v, c) => v - clean[c]!);
      const mean = noise.reduce((sum, v) => sum + v, 0) / d;
      const sd = Math.sqrt(noise.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (d - 1));
      // The sample sd's relative standard error is 1/√(2d) = 0.5%; the mean's standard error is sd/√d.
      expect(Math.abs(sd / expectedSd - 1)).toBeLessThan(0.03);
      expect(Math.abs(mean)).toBeLessThan((4 * expectedSd) / Math.sqrt(d));
      // Gaussian shape: about 68.3% within one sd, 95.4% within two.
      const within = (m: number): number => noise.filter((v) => Math.abs(v) <= m * expectedSd).length / d;
      expect(Math.abs(within(1) - 0.6827)).toBeLessThan(0.015);
      expect(Math.abs(within(2) - 0.9545)).toBeLessThan(0.01);
    }
  });

  test('the seeded generator gives 32-bit integers and uniforms in [0, 1), and differs between seeds', () => {
    const random = seededRandom(2024);
    const integers = Array.from({ length: 1000 }, () => random.nextUint32());
    expect(integers.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
    const uniforms = Array.from({ length: 10_000 }, () => nextUniform(random));
    expect(uniforms.every((u) => u >= 0 && u < 1)).toBe(true);
    expect(Math.abs(uniforms.reduce((s, u) => s + u, 0) / uniforms.length - 0.5)).toBeLessThan(0.02);
    expect(seedState(1)).not.toEqual(seedState(2));
    expect(problems(() => seededRandom(-1))).toEqual(['seed: must be a whole number between 0 and 9007199254740991; got -1']);
    expect(problems(() => seededRandom(1.5))).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

describe('validation', () => {
  const good = (id: string, update: number[], sampleCount = 10): ClientResult => ({ clientId: id, sampleCount, update });

  test('names every problem at once, with its field path', () => {
    const update = [0, 1, 2, 3, 4, 5, 6, Number.NaN];
    const input = [
      good('a', [1, 2, 3, 4, 5, 6, 7, 8]),
      { clientId: 'b', sampleCount: 2.5, update: [1, 2, 3, 4, 5, 6, 7, 8] },
      { clientId: 'c', sampleCount: 3, update },
      { clientId: 'a', sampleCount: -1, update: [1, 2, 3] },
      { clientId: '', sampleCount: '7', update: [Infinity, -Infinity, 1, 2, 3, 4, 5, 6], metrics: { loss: 'low' } },
      'not a client',
      { sampleCount: 1, update: [] },
      { clientId: 'h', sampleCount: 1 },
    ];
    expect(problems(() => parseClientResults(input))).toEqual([
      'clients[1].sampleCount: must be a whole number ≥ 0',
      'clients[2].update[7]: must be a finite number',
      "clients[3].clientId: repeats clients[0].clientId ('a'): client ids must be unique",
      'clients[3].sampleCount: must be a whole number ≥ 0',
      'clients[3].update: has 3 values; clients[0].update has 8: every update must have the same length',
      'clients[4].clientId: must be a non-empty string',
      'clients[4].sampleCount: must be a whole number ≥ 0',
      'clients[4].update[0]: must be a finite number',
      'clients[4].update[1]: must be a finite number',
      'clients[4].metrics.loss: must be a finite number',
      'clients[5]: must be an object with clientId, sampleCount and update',
      'clients[6].clientId: must be a non-empty string',
      'clients[6].update: must hold at least one value',
      'clients[7].update: must be an array of finite numbers',
    ]);
  });

  test('the message joins the problems; the aggregators check their input the same way', () => {
    const bad = [good('a', [1, 2]), good('b', [1, Number.NaN]), good('c', [1])];
    const expected = ['clients[1].update[1]: must be a finite number', 'clients[2].update: has 1 values; clients[0].update has 2: every update must have the same length'];
    expect(() => fedAvg(bad)).toThrow(expected.join('; '));
    for (const run of [() => fedAvg(bad), () => fedAvgWeights(bad), () => coordinateMedian(bad), () => trimmedMean(bad, 0.1), () => aggregate(bad, { aggregator: 'median' }), () => dpFedAvg(bad, { clipNorm: 1, noiseMultiplier: 1 }, seededRandom(1))]) {
      expect(problems(run)).toEqual(expected);
    }
  });

  test('an update full of bad values names the first ten and counts the rest', () => {
    const update = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? Number.NaN : i));
    const found = problems(() => parseClientResults([good('a', update)]));
    expect(found).toHaveLength(11);
    expect(found[0]).toBe('clients[0].update[0]: must be a finite number');
    expect(found[9]).toBe('clients[0].update[18]: must be a finite number');
    expect(found[10]).toBe('clients[0].update: holds 490 more values that are not finite numbers (the first 10 are named)');
  });

  test('the length every update must have is the most common one', () => {
    expect(problems(() => parseClientResults([good('a', [1]), good('b', [1, 2]), good('c', [3, 4])]))).toEqual([
      'clients[0].update: has 1 values; clients[1].update has 2: every update must have the same length',
    ]);
  });

  test('valid input parses, dropping unknown fields', () => {
    expect(parseClientResults([{ clientId: 'a', sampleCount: 0, update: [1.5], metrics: { loss: 0.2 }, extra: true }])).toEqual([{ clientId: 'a', sampleCount: 0, update: [1.5], metrics: { loss: 0.2 } }]);
    expect(problems(() => parseClientResults([]))).toEqual(['clients: must list at least one client']);
    expect(problems(() => parseClientResults({}))).toEqual(['clients: must be an array of client results']);
    expect(problems(() => parseClientResults([{ clientId: 'a', sampleCount: 2 ** 60, update: [1] }], 'results'))).toEqual(['results[0].sampleCount: must be a whole number ≥ 0']);
  });

  test('every client with 0 samples is an error that says so', () => {
    const zero = [good('a', [1], 0), good('b', [2], 0)];
    const expected = ['clients: every client reports sampleCount 0 (2 clients): there are no samples to weight by, so nothing to aggregate'];
    expect(problems(() => fedAvgWeights(zero))).toEqual(expected);
    expect(problems(() => fedAvg(zero))).toEqual(expected);
    expect(problems(() => coordinateMedian(zero))).toEqual(expected);
    expect(problems(() => aggregate(zero, { aggregator: 'trimmed-mean', trimFraction: 0.1 }))).toEqual(expected);
  });

  test('parameters: β in [0, 0.5), C > 0, σ ≥ 0, a random source when privacy is on', () => {
    const clients = [good('a', [1]), good('b', [2])];
    for (const beta of [0.5, -0.01, Number.NaN, Infinity]) {
      expect(problems(() => trimmedMean(clients, beta))).toEqual(['trimFraction: must be a number in [0, 0.5)']);
    }
    expect(problems(() => clipToNorm([1], 0))).toEqual(['clipNorm: must be a finite number > 0']);
    expect(problems(() => gaussianNoise(seededRandom(1), -1, Number.NaN))).toEqual(['length: must be a whole number ≥ 0', 'standardDeviation: must be a finite number ≥ 0']);
    expect(problems(() => dpFedAvg(clients, { clipNorm: Infinity, noiseMultiplier: -1 }, undefined as never))).toEqual([
      'privacy.clipNorm: must be a finite number > 0',
      'privacy.noiseMultiplier: must be a finite number ≥ 0',
      'random: must be a random source ({ name, nextUint32() }): noise needs one when privacy is on',
    ]);
    expect(problems(() => aggregate(clients, { aggregator: 'fedavg', privacy: { clipNorm: 1, noiseMultiplier: 1 } }))).toEqual([
      'random: must be a random source ({ name, nextUint32() }): noise needs one when privacy is on',
    ]);
  });

  test('aggregation specs: every problem at once', () => {
    expect(problems(() => parseAggregationSpec({ aggregator: 'median', trimFraction: 0.6, privacy: { clipNorm: 0 }, extra: 1 }))).toEqual([
      'trimFraction: must be a number in [0, 0.5)',
      "trimFraction: is only used by the 'trimmed-mean' aggregator",
      "privacy: is only available with the 'fedavg' aggregator: the noise σ·C/k is calibrated to the mean of clipped updates, and a median or trimmed mean has another sensitivity",
      'privacy.clipNorm: must be a finite number > 0',
      'privacy.noiseMultiplier: must be a finite number ≥ 0',
      'extra: unknown field',
    ]);
    expect(problems(() => parseAggregationSpec({ aggregator: 'trimmed-mean' }))).toEqual(["trimFraction: is required with the 'trimmed-mean' aggregator"]);
    expect(problems(() => parseAggregationSpec({ aggregator: 'krum' }))).toEqual(['aggregator: must be one of fedavg, median, trimmed-mean']);
    expect(parseAggregationSpec({ aggregator: 'fedavg', privacy: { clipNorm: 1, noiseMultiplier: 1.1 } })).toEqual({ aggregator: 'fedavg', privacy: { clipNorm: 1, noiseMultiplier: 1.1 } });
  });
});

// ---------------------------------------------------------------------------------------------------
// Results, metrics, rounds and convergence
// ---------------------------------------------------------------------------------------------------

describe('aggregation results', () => {
  const clients: ClientResult[] = [
    { clientId: 'a', sampleCount: 30, update: [1, 0], metrics: { loss: 0.5, accuracy: 0.8 } },
    { clientId: 'b', sampleCount: 0, update: [100, 100], metrics: { loss: 9 } },
    { clientId: 'c', sampleCount: 10, update: [-3, 4], metrics: { loss: 0.9 } },
  ];

  test('record who took part, with which weights, trim and privacy', () => {
    expect(aggregate(clients, { aggregator: 'fedavg' })).toEqual({ aggregator: 'fedavg', update: [0, 1], clientIds: ['a', 'c'], ignoredClientIds: ['b'], weights: [0.75, 0.25] });
    expect(aggregate(clients, { aggregator: 'median' })).toEqual({ aggregator: 'median', update: [-1, 2], clientIds: ['a', 'c'], ignoredClientIds: ['b'] });
    expect(aggregate(clients, { aggregator: 'trimmed-mean', trimFraction: 0.4 })).toMatchObject({ trim: { trimFraction: 0.4, trimmed: 0 }, update: [-1, 2] });
    // Under DP the weights are uniform: c's update [-3, 4] (norm 5) is clipped to [-0.6, 0.8], a's is kept.
    const dp = aggregate(clients, { aggregator: 'fedavg', privacy: { clipNorm: 1, noiseMultiplier: 0 } }, seededRandom(5));
    expect(dp.weights).toEqual([0.5, 0.5]);
    expectVectorNear(dp.update, [0.2, 0.4], 'dp', [0.8, 0.4]);
    expect(dp.privacy).toEqual({ mechanism: 'gaussian', noiseMultiplier: 0, clipNorm: 1, clients: 2, noiseStandardDeviation: 0, weighting: 'uniform', randomSource: 'xoshiro128** (seeded with SplitMix64)' });
  });

  test('client metrics are averaged by sample count over the clients with samples', () => {
    const metrics = aggregateMetrics(clients);
    expect(Object.keys(metrics)).toEqual(['accuracy', 'loss']);
    expect(metrics.accuracy).toEqual({ mean: 0.8, clients: 1, samples: 30 });
    expect(metrics.loss!.mean).toBeCloseTo(0.6, 14);
    expect(metrics.loss).toMatchObject({ clients: 2, samples: 40 });
  });

  test('applyUpdate adds the update scaled by the server learning rate', () => {
    expect(applyUpdate([1, 2], [0.5, -1])).toEqual([1.5, 1]);
    expect(applyUpdate([1, 2], [0.5, -1], 2)).toEqual([2, 0]);
    expect(problems(() => applyUpdate([1, 2], [Number.NaN], 0))).toEqual([
      'update: has 1 values; globalModel has 2',
      'update[0]: must be a finite number',
      'serverLearningRate: must be a finite number > 0',
    ]);
  });
});

describe('round quorum', () => {
  const result = (clientId: string, sampleCount = 5): ClientResult => ({ clientId, sampleCount, update: [1, 2] });

  test('a round with enough contributing clients returns them, and the clients that did not contribute', () => {
    const quorum = checkRoundQuorum({
      round: 2,
      minClients: 2,
      results: [result('a'), result('b'), result('z', 0)],
      failures: [{ clientId: 'c', reason: 'training job failed: OutOfMemory' }],
      selected: ['a', 'b', 'c', 'd', 'z'],
    });
    expect(quorum.contributing.map((r) => r.clientId)).toEqual(['a', 'b']);
    expect(quorum.failed).toEqual([
      { clientId: 'c', reason: 'training job failed: OutOfMemory' },
      { clientId: 'z', reason: 'reported 0 samples: nothing to aggregate' },
      { clientId: 'd', reason: 'no result returned' },
    ]);
  });

  test('a round with too few fails with an error listing every client that failed and why', () => {
    const run = (): unknown =>
      checkRoundQuorum({
        round: 3,
        minClients: 3,
        results: [result('a'), result('z', 0)],
        failures: [{ clientId: 'b', reason: 'timed out after 900 s' }],
        selected: ['a', 'b', 'c', 'z'],
      });
    expect(run).toThrow(RoundFailedError);
    expect(run).toThrow('round 3: 1 client contributed, fewer than the 3 required (a); failed: b (timed out after 900 s), z (reported 0 samples: nothing to aggregate), c (no result returned)');
    try {
      run();
    } catch (error) {
      expect(error).toMatchObject({ round: 3, minClients: 3, contributing: ['a'] });
      expect((error as RoundFailedError).failed.map((f) => f.clientId)).toEqual(['b', 'z', 'c']);
    }
    expect(() => checkRoundQuorum({ round: 1, minClients: 1, results: [], failures: [] })).toThrow('round 1: 0 clients contributed, fewer than the 1 required; failed: none');
  });

  test('inconsistent round input: every problem at once', () => {
    expect(
      problems(() =>
        checkRoundQuorum({
          round: 0,
          minClients: 1.5,
          results: [result('a'), result('a'), { clientId: 'x', sampleCount: 1, update: [1, Number.NaN] }],
          failures: [{ clientId: 'a', reason: 'oops' }, { clientId: 'q', reason: 'r' }, { clientId: 'q', reason: 'r' }],
          selected: ['a', 'q', 'q'],
        }),
      ),
    ).toEqual([
      'round: must be a whole number ≥ 1',
      'minClients: must be a whole number ≥ 1',
      'results[1].clientId: repeats results[0].clientId (\'a\'): client ids must be unique',
      'results[2].clientId: \'x\' was not selected for round 0',
      'results[2].update[1]: must be a finite number',
      "failures[0].clientId: 'a' also has a result (results[0])",
      "failures[2].clientId: repeats failures[1].clientId ('q')",
      "selected[2]: repeats 'q'",
    ]);
  });
});

describe('convergence', () => {
  const higher = { maxRounds: 10, direction: 'higher-is-better' as const, patience: 3, minDelta: 0.02 };

  test('stops when the metric has not improved by minDelta for patience rounds', () => {
    expect(decideConvergence([0.5, 0.6, 0.61, 0.605], higher)).toEqual({ stop: false, roundsCompleted: 4, bestRound: 2, bestValue: 0.6, roundsWithoutImprovement: 2 });
    // Gains below minDelta do not move the best value, so they do not reset the count.
    expect(decideConvergence([0.5, 0.6, 0.61, 0.615, 0.619], higher)).toEqual({ stop: true, reason: 'no-improvement', roundsCompleted: 5, bestRound: 2, bestValue: 0.6, roundsWithoutImprovement: 3 });
    expect(decideConvergence([0.5, 0.6, 0.61, 0.615, 0.625], higher)).toMatchObject({ stop: false, bestRound: 5, roundsWithoutImprovement: 0 });
    // Lower is better: a loss.
    const lower = { maxRounds: 100, direction: 'lower-is-better' as const, patience: 2 };
    expect(decideConvergence([2, 1.5, 1.5, 1.6], lower)).toMatchObject({ stop: true, reason: 'no-improvement', bestRound: 2, bestValue: 1.5 });
    expect(decideConvergence([2, 1.5, 1.6, 1.4], lower)).toMatchObject({ stop: false, bestRound: 4 });
    // minDelta 0: any strict improvement counts, a plateau does not.
    expect(decideConvergence([1, 1, 1], { maxRounds: 10, direction: 'higher-is-better', patience: 2 })).toMatchObject({ stop: true, reason: 'no-improvement', bestRound: 1 });
  });

  test('stops after maxRounds, whatever the metric; nothing stops an empty history', () => {
    expect(decideConvergence([1, 2, 3], { maxRounds: 3, direction: 'higher-is-better', patience: 5 })).toEqual({ stop: true, reason: 'max-rounds', roundsCompleted: 3, bestRound: 3, bestValue: 3, roundsWithoutImprovement: 0 });
    expect(decideConvergence([], { maxRounds: 3, direction: 'lower-is-better', patience: 1 })).toEqual({ stop: false, roundsCompleted: 0, roundsWithoutImprovement: 0 });
    fc.assert(
      fc.property(fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { maxLength: 20 }), fc.integer({ min: 1, max: 20 }), (history, maxRounds) => {
        const decision = decideConvergence(history, { maxRounds, direction: 'higher-is-better' });
        expect(decision.stop).toBe(history.length >= maxRounds);
        if (history.length > 0) expect(decision.bestValue).toBe(Math.max(...history));
      }),
      { numRuns: 100 },
    );
  });

  test('bad history and options: every problem at once', () => {
    expect(problems(() => decideConvergence([1, Number.NaN], { maxRounds: 0, direction: 'up' as never, patience: 0, minDelta: -1 }))).toEqual([
      'history[1]: must be a finite number',
      'options.maxRounds: must be a whole number ≥ 1',
      'options.direction: must be higher-is-better or lower-is-better',
      'options.patience: must be a whole number ≥ 1',
      'options.minDelta: must be a finite number ≥ 0',
    ]);
  });
});
