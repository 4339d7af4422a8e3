// The multi-armed bandit that allocates an endpoint's traffic between variants: posteriors, the seeded
// generator and samplers, Thompson sampling against closed forms, UCB, the guard rails and the state schema.
import fc from 'fast-check';
import {
  applyGuardRails,
  BanditInputError,
  betaPosterior,
  createBanditState,
  decideAllocation,
  DEFAULT_NORMAL_PRIOR,
  greedyTargets,
  normalInverseGammaPosterior,
  outcomesFromAggregate,
  parseBanditState,
  posteriors,
  probabilityBetaExceeds,
  recordOutcomes,
  Sampler,
  SplitMix64,
  thompsonProbabilities,
  toUnits,
  ucbScores,
  WEIGHT_UNITS,
  Xoshiro128StarStar,
  type ArmPosterior,
  type BanditSettings,
  type BanditState,
  type BetaPosterior,
  type GuardRails,
  type NormalInverseGammaPosterior,
} from '../../../lambda/shared/bandit';
import { logGamma, normalCdf, regularizedIncompleteBeta, studentTCdf } from '../../../lambda/shared/stats';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Settings = Partial<Omit<BanditSettings, 'guardRails'>> & { guardRails?: Partial<GuardRails> };

const names = (k: number) => Array.from({ length: k }, (_, index) => `v${index}`);

/** A binary state with these [successes, failures] per arm and (relative) weights, equal by default. */
function binaryState(counts: readonly (readonly [number, number])[], settings: Settings = {}, weights?: readonly number[]): BanditState {
  const variants = names(counts.length);
  const state = createBanditState({
    outcomeType: 'binary',
    weights: variants.map((name, index) => ({ VariantName: name, DesiredWeight: weights?.[index] ?? 1 })),
    settings: { ...settings, guardRails: { minObservations: 1, ...settings.guardRails } },
  });
  return recordOutcomes(state, counts.map(([successes, failures], index) => ({ variant: variants[index] as string, successes, failures })));
}

/** Sums of n outcomes with exactly this sample mean and sample variance. */
const sums = (n: number, mean: number, variance: number) => ({ count: n, sum: n * mean, sumOfSquares: (n - 1) * variance + n * mean * mean });

function continuousState(arms: readonly { n: number; mean: number; variance: number }[], settings: Settings = {}): BanditState {
  const variants = names(arms.length);
  const state = createBanditState({
    outcomeType: 'continuous',
    weights: variants.map((name) => ({ VariantName: name, DesiredWeight: 1 })),
    settings: { ...settings, guardRails: { minObservations: 2, ...settings.guardRails } },
  });
  return recordOutcomes(state, arms.map((arm, index) => ({ variant: variants[index] as string, ...sums(arm.n, arm.mean, arm.variance) })));
}

const beta = (alpha: number, betaParameter: number): BetaPosterior => betaPosterior({ alpha, beta: betaParameter }, 0, 0);

/** Standard error of a Monte Carlo proportion (never below one draw's worth). */
const monteCarloError = (p: number, draws: number) => Math.max(Math.sqrt((p * (1 - p)) / draws), 1 / draws);

/** The BanditInputError fn throws. */
function inputError(fn: () => unknown): BanditInputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BanditInputError);
    return error as BanditInputError;
  }
  throw new Error('expected a BanditInputError, but nothing was thrown');
}

/**
 * P(X > Y) = ∫ f_X(t) F_Y(t) dt by Simpson's rule on 4 000 intervals, with F_Y from stats'
 * regularizedIncompleteBeta and f_X from logGamma: independent of the finite-sum formula. Parameters ≥ 1.
 */
function integratedBetaExceeds(x: { alpha: number; beta: number }, y: { alpha: number; beta: number }): number {
  const logB = logGamma(x.alpha) + logGamma(x.beta) - logGamma(x.alpha + x.beta);
  const density = (t: number) => (t <= 0 || t >= 1 ? (t <= 0 ? (x.alpha === 1 ? Math.exp(-logB) : 0) : x.beta === 1 ? Math.exp(-logB) : 0) : Math.exp((x.alpha - 1) * Math.log(t) + (x.beta - 1) * Math.log1p(-t) - logB));
  const integrand = (t: number) => density(t) * regularizedIncompleteBeta(t, y.alpha, y.beta);
  const intervals = 4_000;
  const h = 1 / intervals;
  let sum = integrand(0) + integrand(1);
  for (let i = 1; i < intervals; i++) sum += (i % 2 === 1 ? 4 : 2) * integrand(i * h);
  return (sum * h) / 3;
}

// ---------------------------------------------------------------------------------------------
// Generator and samplers
// ---------------------------------------------------------------------------------------------

describe('random numbers', () => {
  test('xoshiro128** reproduces the reference outputs for state (1, 2, 3, 4)', () => {
    const rng = Xoshiro128StarStar.fromState([1, 2, 3, 4]);
    expect(Array.from({ length: 10 }, () => rng.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]);
  });

  test('SplitMix64 reproduces the reference outputs for seed 1234567', () => {
    const mix = new SplitMix64(1234567);
    expect([mix.next(), mix.next(), mix.next(), mix.next(), mix.next()]).toEqual([6457827717110365317n, 3203168211198807973n, 9817491932198370423n, 4593380528125082431n, 16408922859458223821n]);
  });

  test('a seed fixes the stream, seeds differ (the high bits too), and doubles stay inside (0, 1)', () => {
    const take = (seed: number) => {
      const rng = Xoshiro128StarStar.fromSeed(seed);
      return Array.from({ length: 5 }, () => rng.nextDouble());
    };
    expect(take(7)).toEqual(take(7));
    expect(take(7)).not.toEqual(take(8));
    expect(take(2 ** 40)).not.toEqual(take(0));
    const rng = Xoshiro128StarStar.fromSeed(3);
    const uniforms = Array.from({ length: 20_000 }, () => rng.nextDouble());
    expect(uniforms.every((u) => u > 0 && u < 1)).toBe(true);
    expect(Math.abs(uniforms.reduce((a, b) => a + b, 0) / 20_000 - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / 20_000));
    // The extremes of the construction: k = 0 and k = 2^52 - 1 give 2^-53 and 1 - 2^-53.
    expect((0 + 0.5) / 2 ** 52).toBeGreaterThan(0);
    expect((2 ** 52 - 1 + 0.5) / 2 ** 52).toBeLessThan(1);
    expect(() => Xoshiro128StarStar.fromSeed(-1)).toThrow(/seed/);
    expect(() => Xoshiro128StarStar.fromSeed(1.5)).toThrow(/seed/);
    expect(() => Xoshiro128StarStar.fromState([0, 0, 0, 0])).toThrow(/all zero/);
  });

  test('Box–Muller normals, Marsaglia–Tsang gammas (shape below 1 too) have the right moments', () => {
    const sampler = new Sampler(Xoshiro128StarStar.fromSeed(11));
    const n = 20_000;
    const normals = Array.from({ length: n }, () => sampler.normal());
    const mean = normals.reduce((a, b) => a + b, 0) / n;
    const variance = normals.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    for (const shape of [0.3, 1, 2.5, 50]) {
      const draws = Array.from({ length: n }, () => sampler.gamma(shape));
      const m = draws.reduce((a, b) => a + b, 0) / n;
      const v = draws.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1);
      expect(draws.every((value) => value > 0)).toBe(true);
      // Gamma(k, 1): mean k, variance k; the variance of the sample variance is (2 + 6/k) k² / n.
      expect(Math.abs(m - shape)).toBeLessThan(5 * Math.sqrt(shape / n));
      expect(Math.abs(v - shape)).toBeLessThan(5 * shape * Math.sqrt((2 + 6 / shape) / n));
    }
    expect(() => sampler.gamma(0)).toThrow(/shape/);
  });

  test('Beta draws follow the Beta CDF (regularizedIncompleteBeta) at several points', () => {
    const sampler = new Sampler(Xoshiro128StarStar.fromSeed(5));
    const n = 20_000;
    for (const [a, b] of [[0.5, 0.5], [2, 5], [30, 70], [1, 1]] as const) {
      const draws = Array.from({ length: n }, () => sampler.beta(a, b));
      for (const t of [0.1, 0.3, 0.5, 0.7]) {
        const expected = regularizedIncompleteBeta(t, a, b);
        const observed = draws.filter((value) => value <= t).length / n;
        expect(Math.abs(observed - expected)).toBeLessThan(5 * monteCarloError(expected, n));
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Posteriors
// ---------------------------------------------------------------------------------------------

describe('posteriors', () => {
  test('binary: Beta(α0 + successes, β0 + failures), from the default Beta(1, 1) or a configured prior', () => {
    const state = binaryState([[7, 3], [0, 0]]);
    expect(posteriors(state)).toEqual([
      { kind: 'beta', alpha: 8, beta: 4, mean: 8 / 12 },
      { kind: 'beta', alpha: 1, beta: 1, mean: 0.5 },
    ]);
    const informed = recordOutcomes(
      createBanditState({ outcomeType: 'binary', prior: { alpha: 2, beta: 38 }, weights: [{ VariantName: 'a', DesiredWeight: 1 }, { VariantName: 'b', DesiredWeight: 1 }] }),
      [{ variant: 'a', successes: 10, failures: 90 }],
    );
    expect(posteriors(informed)[0]).toEqual({ kind: 'beta', alpha: 12, beta: 128, mean: 12 / 140 });
  });

  test('updates add up: two batches give the state one batch gives, and arms left out keep their counts', () => {
    const base = binaryState([[0, 0], [0, 0]]);
    const twice = recordOutcomes(recordOutcomes(base, [{ variant: 'v0', successes: 3, failures: 4 }]), [{ variant: 'v0', successes: 5, failures: 6 }, { variant: 'v1', successes: 1, failures: 0 }]);
    const once = recordOutcomes(base, [{ variant: 'v0', successes: 8, failures: 10 }, { variant: 'v1', successes: 1, failures: 0 }]);
    expect(twice).toEqual(once);
    expect(base.arms.map((arm) => 'successes' in arm && arm.successes)).toEqual([0, 0]);
  });

  test('continuous, reference prior: μ | data ~ t_{n-1}(x̄, s²/n)', () => {
    const values = [12.5, 9.75, 11, 14.25, 10.5, 13, 8.5, 11.75];
    const n = values.length;
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const s2 = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    const posterior = normalInverseGammaPosterior(DEFAULT_NORMAL_PRIOR, n, values.reduce((a, b) => a + b, 0), values.reduce((a, b) => a + b * b, 0)) as NormalInverseGammaPosterior;
    expect(posterior.mean).toBeCloseTo(mean, 12);
    expect(posterior.kappa).toBe(n);
    expect(posterior.degreesOfFreedom).toBe(n - 1);
    expect(posterior.scale).toBeCloseTo(Math.sqrt(s2 / n), 12);
  });

  test('continuous, informative prior: the conjugate Normal-Inverse-Gamma update', () => {
    const prior = { mean: 10, kappa: 4, alpha: 3, beta: 8 };
    const values = [11, 12.5, 9, 13, 10.5, 12];
    const n = values.length;
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const squares = values.reduce((a, b) => a + (b - mean) ** 2, 0);
    const posterior = normalInverseGammaPosterior(prior, n, values.reduce((a, b) => a + b, 0), values.reduce((a, b) => a + b * b, 0)) as NormalInverseGammaPosterior;
    expect(posterior.kappa).toBe(10);
    expect(posterior.mean).toBeCloseTo((4 * 10 + n * mean) / 10, 12);
    expect(posterior.alpha).toBe(6);
    expect(posterior.beta).toBeCloseTo(8 + squares / 2 + ((4 * n) / (2 * 10)) * (mean - 10) ** 2, 12);
    expect(posterior.scale).toBeCloseTo(Math.sqrt(posterior.beta / (6 * 10)), 12);
  });

  test('continuous: improper with fewer than 2 outcomes under the reference prior; a point mass when every outcome is equal', () => {
    expect(normalInverseGammaPosterior(DEFAULT_NORMAL_PRIOR, 0, 0, 0)).toBeNull();
    expect(normalInverseGammaPosterior(DEFAULT_NORMAL_PRIOR, 1, 5, 25)).toBeNull();
    const flat = normalInverseGammaPosterior(DEFAULT_NORMAL_PRIOR, 4, 20, 100) as NormalInverseGammaPosterior;
    expect(flat.scale).toBe(0);
    const sampler = new Sampler(Xoshiro128StarStar.fromSeed(1));
    expect(sampler.draw(flat)).toBe(5);
  });

  test('continuous: Thompson draws of the mean follow the t marginal (stats.studentTCdf)', () => {
    const posterior = normalInverseGammaPosterior(DEFAULT_NORMAL_PRIOR, 10, 10 * 3, 9 * 4 + 10 * 9) as NormalInverseGammaPosterior;
    const sampler = new Sampler(Xoshiro128StarStar.fromSeed(21));
    const n = 20_000;
    const draws = Array.from({ length: n }, () => sampler.draw(posterior));
    for (const q of [-2, -1, 0, 0.5, 1.5]) {
      const expected = studentTCdf(q, posterior.degreesOfFreedom);
      const observed = draws.filter((value) => value <= posterior.mean + q * posterior.scale).length / n;
      expect(Math.abs(observed - expected)).toBeLessThan(5 * monteCarloError(expected, n));
    }
  });

  test('outcomes from the experiment analysis aggregate', () => {
    expect(outcomesFromAggregate({ variant: 'a', predictions: 120, outcomes: 100, successes: 40, mean: 0.4, variance: 0.24, ignoredOutcomes: 0 }, 'binary')).toEqual({ variant: 'a', successes: 40, failures: 60 });
    const continuous = outcomesFromAggregate({ variant: 'b', predictions: 10, outcomes: 5, mean: 2, variance: 2.5, ignoredOutcomes: 0 }, 'continuous');
    // 0, 1, 2, 3, 4 (mean 2, variance 2.5): Σx = 10, Σx² = 30.
    expect(continuous).toEqual({ variant: 'b', count: 5, sum: 10, sumOfSquares: 30 });
  });
});

// ---------------------------------------------------------------------------------------------
// P(arm is best)
// ---------------------------------------------------------------------------------------------

describe('P(Beta > Beta), exactly', () => {
  test('known values: 1/2 for equal arms, symmetry, and agreement with numerical integration', () => {
    expect(probabilityBetaExceeds({ alpha: 1, beta: 1 }, { alpha: 1, beta: 1 })).toBeCloseTo(0.5, 14);
    expect(probabilityBetaExceeds({ alpha: 7, beta: 13 }, { alpha: 7, beta: 13 })).toBeCloseTo(0.5, 12);
    // Beta(2, 1) > Beta(1, 1): ∫ 2t · t dt = 2/3.
    expect(probabilityBetaExceeds({ alpha: 2, beta: 1 }, { alpha: 1, beta: 1 })).toBeCloseTo(2 / 3, 14);
    for (const [x, y] of [
      [{ alpha: 10, beta: 5 }, { alpha: 6, beta: 9 }],
      [{ alpha: 3, beta: 20 }, { alpha: 5, beta: 18 }],
      [{ alpha: 25, beta: 25 }, { alpha: 22, beta: 28 }],
      [{ alpha: 1, beta: 4 }, { alpha: 2.5, beta: 3.5 }],
    ] as const) {
      const exact = probabilityBetaExceeds(x, y);
      expect(exact + probabilityBetaExceeds(y, x)).toBeCloseTo(1, 12);
      expect(Math.abs(exact - integratedBetaExceeds(x, y))).toBeLessThan(1e-7);
    }
  });

  test('needs one whole alpha; refuses parameters that are not positive', () => {
    expect(() => probabilityBetaExceeds({ alpha: 1.5, beta: 1 }, { alpha: 2.5, beta: 1 })).toThrow(/whole number/);
    expect(() => probabilityBetaExceeds({ alpha: 0, beta: 1 }, { alpha: 1, beta: 1 })).toThrow(/x\.alpha/);
  });

  test('large counts stay finite and inside [0, 1]', () => {
    const p = probabilityBetaExceeds({ alpha: 5_001, beta: 4_001 }, { alpha: 4_801, beta: 4_201 });
    expect(p).toBeGreaterThan(0.99);
    expect(p).toBeLessThanOrEqual(1);
    const q = probabilityBetaExceeds({ alpha: 4_801, beta: 4_201 }, { alpha: 5_001, beta: 4_001 });
    expect(p + q).toBeCloseTo(1, 9);
  });

  test('property: more successes never lower the probability of being best (exact, two arms)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 20 }), (a1, b1, a2, b2, extra) => {
        const before = probabilityBetaExceeds({ alpha: a1, beta: b1 }, { alpha: a2, beta: b2 });
        const after = probabilityBetaExceeds({ alpha: a1 + extra, beta: b1 }, { alpha: a2, beta: b2 });
        expect(after).toBeGreaterThanOrEqual(before - 1e-12);
      }),
      { numRuns: 200 },
    );
  });
});

describe('Thompson sampling', () => {
  test('the Monte Carlo estimate agrees with the exact formula within Monte Carlo error', () => {
    const draws = 40_000;
    for (const [x, y] of [
      [{ alpha: 10, beta: 5 }, { alpha: 6, beta: 9 }],
      [{ alpha: 31, beta: 71 }, { alpha: 41, beta: 61 }],
      [{ alpha: 2, beta: 2 }, { alpha: 3, beta: 4 }],
    ] as const) {
      const exact = probabilityBetaExceeds(x, y);
      const [estimate] = thompsonProbabilities([beta(x.alpha, x.beta), beta(y.alpha, y.beta)], { draws, random: Xoshiro128StarStar.fromSeed(99) });
      expect(Math.abs((estimate as number) - exact)).toBeLessThan(5 * monteCarloError(exact, draws));
    }
  });

  test('property: agreement with the exact formula for random integer posteriors', () => {
    const draws = 10_000;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.nat(), (a1, b1, a2, b2, seed) => {
        const exact = probabilityBetaExceeds({ alpha: a1, beta: b1 }, { alpha: a2, beta: b2 });
        const [estimate] = thompsonProbabilities([beta(a1, b1), beta(a2, b2)], { draws, random: Xoshiro128StarStar.fromSeed(seed) });
        expect(Math.abs((estimate as number) - exact)).toBeLessThan(5 * monteCarloError(exact, draws));
      }),
      { numRuns: 25 },
    );
  });

  test('one arm clearly better: its probability is near 1; lower-is-better turns it round', () => {
    const state = binaryState([[600, 400], [500, 500], [520, 480]]);
    const [p] = thompsonProbabilities(posteriors(state) as ArmPosterior[], { draws: 10_000, random: Xoshiro128StarStar.fromSeed(1) });
    expect(p).toBeGreaterThan(0.999);
    const lower = thompsonProbabilities(posteriors(state) as ArmPosterior[], { draws: 10_000, random: Xoshiro128StarStar.fromSeed(1), higherIsBetter: false });
    expect(lower[0]).toBeLessThan(0.001);
    expect(lower[1]).toBeGreaterThan(0.8);
  });

  test('symmetric arms get about equal probabilities, summing to 1', () => {
    const draws = 30_000;
    const probabilities = thompsonProbabilities([beta(50, 50), beta(50, 50), beta(50, 50)], { draws, random: Xoshiro128StarStar.fromSeed(4) });
    expect(probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (const p of probabilities) expect(Math.abs(p - 1 / 3)).toBeLessThan(5 * monteCarloError(1 / 3, draws));
  });

  test('tied draws share the round: identical point masses split evenly', () => {
    const point: NormalInverseGammaPosterior = { kind: 'normal-inverse-gamma', mean: 3, kappa: 5, alpha: 2, beta: 0, degreesOfFreedom: 4, scale: 0 };
    expect(thompsonProbabilities([point, point], { draws: 100, random: Xoshiro128StarStar.fromSeed(1) })).toEqual([0.5, 0.5]);
  });

  test('continuous arms with many outcomes: P(μ1 > μ2) ≈ Φ(Δ / √(s1²/n1 + s2²/n2))', () => {
    const draws = 40_000;
    const state = continuousState([{ n: 400, mean: 10.1, variance: 1 }, { n: 400, mean: 10, variance: 1.2 }]);
    const [p] = thompsonProbabilities(posteriors(state) as ArmPosterior[], { draws, random: Xoshiro128StarStar.fromSeed(8) });
    const approx = normalCdf(0.1 / Math.sqrt(1 / 400 + 1.2 / 400));
    // The t marginals have 399 degrees of freedom: the normal approximation is within ~1e-3.
    expect(Math.abs((p as number) - approx)).toBeLessThan(5 * monteCarloError(approx, draws) + 3e-3);
  });

  test('property: more successes for an arm never lower its Monte Carlo probability beyond the noise', () => {
    const draws = 8_000;
    const tolerance = 5 * Math.sqrt(2 * 0.25 / draws);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 80 })), { minLength: 2, maxLength: 4 }), fc.integer({ min: 1, max: 30 }), fc.nat(), (counts, extra, seed) => {
        const before = counts.map(([s, f]) => betaPosterior({ alpha: 1, beta: 1 }, s, f));
        const after = before.map((posterior, index) => (index === 0 ? betaPosterior({ alpha: 1, beta: 1 }, posterior.alpha - 1 + extra, posterior.beta - 1) : posterior));
        const [p0] = thompsonProbabilities(before, { draws, random: Xoshiro128StarStar.fromSeed(seed) });
        const [p1] = thompsonProbabilities(after, { draws, random: Xoshiro128StarStar.fromSeed(seed) });
        expect(p1 as number).toBeGreaterThanOrEqual((p0 as number) - tolerance);
      }),
      { numRuns: 25 },
    );
  });
});

describe('UCB', () => {
  test('binary indices are UCB1: x̄ + c √(2 ln N / n); the greedy target goes to the highest', () => {
    const state = binaryState([[60, 40], [50, 50]], { strategy: 'ucb' });
    const scores = ucbScores(state);
    const bonus = Math.sqrt((2 * Math.log(200)) / 100);
    expect(scores[0]).toEqual({ mean: 0.6, bonus, index: 0.6 + bonus });
    expect(scores[1]?.index).toBeCloseTo(0.5 + bonus, 14);
    expect(greedyTargets(scores.map((score) => score.index))).toEqual([1, 0]);
  });

  test('an arm with few outcomes gets the larger bonus (exploration), scaled by c', () => {
    const state = binaryState([[60, 40], [5, 5]], { strategy: 'ucb' });
    const [big, small] = ucbScores(state);
    expect((small?.bonus as number) > (big?.bonus as number)).toBe(true);
    expect(greedyTargets(ucbScores(state).map((score) => score.index))).toEqual([0, 1]);
    const greedy = binaryState([[60, 40], [5, 5]], { strategy: 'ucb', exploration: 0 });
    expect(greedyTargets(ucbScores(greedy).map((score) => score.index))).toEqual([1, 0]);
  });

  test('continuous indices scale the bonus by the sample standard deviation; lower-is-better picks the lowest mean', () => {
    const state = continuousState([{ n: 100, mean: 100, variance: 100 }, { n: 100, mean: 120, variance: 100 }], { strategy: 'ucb', higherIsBetter: false });
    const [fast, slow] = ucbScores(state);
    expect(fast?.bonus).toBeCloseTo(10 * Math.sqrt((2 * Math.log(200)) / 100), 10);
    expect(fast?.index).toBeCloseTo(-100 + (fast?.bonus as number), 10);
    expect((fast?.index as number) > (slow?.index as number)).toBe(true);
  });

  test('identical arms tie exactly and split the target; the weights then stay put', () => {
    expect(greedyTargets([2, 2, 1])).toEqual([0.5, 0.5, 0]);
    const state = binaryState([[30, 70], [30, 70]], { strategy: 'ucb' });
    const result = decideAllocation(state);
    expect(result.decision.changed).toBe(false);
    expect(result.weights.map((weight) => weight.DesiredWeight)).toEqual([0.5, 0.5]);
    expect(result.decision.ucb).toEqual({ exploration: 1, totalObservations: 200 });
  });
});

// ---------------------------------------------------------------------------------------------
// Guard rails
// ---------------------------------------------------------------------------------------------

describe('guard rails', () => {
  const rails = { minShare: 0.05, maxStep: 0.1 };

  test('the step limit holds a big move to 10 points per arm', () => {
    const result = applyGuardRails([0.5, 0.5], [1, 0], rails);
    expect(result.weights).toEqual([0.6, 0.4]);
    expect(result.limitedBy).toEqual(['maxStep', 'maxStep']);
    expect(result.repaired).toBe(false);
  });

  test('the floor keeps every arm at 5%', () => {
    const result = applyGuardRails([0.1, 0.9], [0, 1], rails);
    expect(result.weights).toEqual([0.05, 0.95]);
    expect(result.limitedBy).toEqual(['minShare', null]);
  });

  test('a target inside the bounds is taken as it is', () => {
    const result = applyGuardRails([0.4, 0.3, 0.3], [0.45, 0.3, 0.25], rails);
    expect(result.weights).toEqual([0.45, 0.3, 0.25]);
    expect(result.limitedBy).toEqual([null, null, null]);
  });

  test('what an arm held by the step limit cannot take, the others share (the closest feasible weights)', () => {
    const result = applyGuardRails([1, 1, 1], [0.9, 0.05, 0.05], rails);
    // Previous on the grid: 333334, 333333, 333333 units; the first arm may rise to 433334.
    expect(result.units).toEqual([433_334, 283_333, 283_333]);
    expect(result.limitedBy).toEqual(['maxStep', null, null]);
  });

  test('previous weights under the floor (an endpoint at 100/0) are repaired first; the record keeps both', () => {
    const result = applyGuardRails([100, 0], [0.5, 0.5], rails);
    expect(result.previous).toEqual([1, 0]);
    expect(result.start).toEqual([0.95, 0.05]);
    expect(result.repaired).toBe(true);
    expect(result.weights).toEqual([0.85, 0.15]);
  });

  test('rounding: units sum to exactly WEIGHT_UNITS, remainders go to the earlier arm on ties', () => {
    expect(toUnits([1, 1, 1])).toEqual([333_334, 333_333, 333_333]);
    expect(toUnits([95, 5])).toEqual([950_000, 50_000]);
    expect(toUnits([0.950001, 0.049999])).toEqual([950_001, 49_999]);
    expect(() => toUnits([0, 0])).toThrow(/above 0/);
    expect(() => toUnits([1, -1])).toThrow(/weights\[1\]/);
  });

  /** k arms with previous weights on the grid that respect the floor, and a random target. */
  const railsCase = fc
    .integer({ min: 2, max: 8 })
    .chain((k) =>
      fc.record({
        k: fc.constant(k),
        minShare: fc.integer({ min: 0, max: Math.floor(100 / k) }).map((percent) => percent / 100),
        maxStep: fc.integer({ min: 1, max: 100_000 }).map((ppm) => ppm / 100_000),
        split: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: k, maxLength: k }),
        target: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: k, maxLength: k }).filter((values) => values.some((value) => value > 1e-9)),
      }),
    )
    .map(({ k, minShare, maxStep, split, target }) => {
      const floor = Math.round(minShare * WEIGHT_UNITS);
      const spare = WEIGHT_UNITS - k * floor;
      const extra = toUnits(split.some((value) => value > 0) ? split : split.map(() => 1)).map((units) => Math.floor((units * spare) / WEIGHT_UNITS));
      extra[0] = (extra[0] as number) + spare - extra.reduce((a, b) => a + b, 0);
      return { minShare, maxStep, previousUnits: extra.map((units) => units + floor), target };
    });

  test('property: weights sum to 1, each is at least the floor, none moves more than the step limit', () => {
    fc.assert(
      fc.property(railsCase, ({ minShare, maxStep, previousUnits, target }) => {
        const previous = previousUnits.map((units) => units / WEIGHT_UNITS);
        const result = applyGuardRails(previous, target, { minShare, maxStep });
        expect(result.repaired).toBe(false);
        expect(result.units.reduce((a, b) => a + b, 0)).toBe(WEIGHT_UNITS);
        expect(Math.abs(result.weights.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual(1e-12);
        result.weights.forEach((weight, index) => {
          expect(weight).toBeGreaterThanOrEqual(minShare);
          expect(Math.abs((result.units[index] as number) - (previousUnits[index] as number))).toBeLessThanOrEqual(Math.round(maxStep * WEIGHT_UNITS));
          expect(Math.abs(weight - (previous[index] as number))).toBeLessThanOrEqual(maxStep + 1e-12);
        });
      }),
      { numRuns: 300 },
    );
  });

  test('property: the result is the feasible point closest to the target (no feasible move towards it helps)', () => {
    fc.assert(
      fc.property(railsCase, ({ minShare, maxStep, previousUnits, target }) => {
        const result = applyGuardRails(previousUnits, target, { minShare, maxStep });
        const total = target.reduce((a, b) => a + b, 0);
        const goal = target.map((value) => (value / total) * WEIGHT_UNITS);
        const lo = previousUnits.map((units) => Math.max(Math.round(minShare * WEIGHT_UNITS), units - Math.round(maxStep * WEIGHT_UNITS)));
        const hi = previousUnits.map((units) => Math.min(WEIGHT_UNITS, units + Math.round(maxStep * WEIGHT_UNITS)));
        // KKT for the projection: an arm that could still rise sits no further below its goal than an arm
        // that could still fall sits above its own (up to the one unit of rounding).
        result.units.forEach((up, i) => {
          if (up >= (hi[i] as number)) return;
          result.units.forEach((down, j) => {
            if (i === j || down <= (lo[j] as number)) return;
            expect(up - (goal[i] as number)).toBeGreaterThanOrEqual(down - (goal[j] as number) - 2);
          });
        });
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

describe('decideAllocation', () => {
  test('moves traffic towards the better arm within the rails and records the decision', () => {
    const state = binaryState([[300, 700], [40, 60]], { guardRails: { minObservations: 30 } }, [95, 5]);
    const result = decideAllocation(state, { seed: 42 });
    expect(result.weights).toEqual([{ VariantName: 'v0', DesiredWeight: 0.85 }, { VariantName: 'v1', DesiredWeight: 0.15 }]);
    const { decision } = result;
    expect(decision).toMatchObject({
      version: 1,
      step: 1,
      outcome: 'allocated',
      changed: true,
      strategy: 'thompson',
      thompson: { seed: 42, draws: 10_000, generator: 'xoshiro128**/splitmix64' },
      boundBy: ['maxStep'],
      repairedPrevious: false,
      guardRails: { minShare: 0.05, maxStep: 0.1, minObservations: 30 },
    });
    expect(decision.arms[0]).toMatchObject({ variant: 'v0', observations: 1000, posterior: { kind: 'beta', alpha: 301, beta: 701 }, previousWeight: 0.95, weight: 0.85, change: -0.1, limitedBy: 'maxStep' });
    expect(decision.arms[1]?.probabilityBest).toBeGreaterThan(0.95);
    expect(decision.arms.reduce((sum, arm) => sum + (arm.probabilityBest as number), 0)).toBeCloseTo(1, 12);
    expect(decision.reason).toMatch(/^thompson: P\(best\) v0 0\.\d+, v1 0\.\d+; weights v0 0\.95→0\.85, v1 0\.05→0\.15/);
    // The new state carries the weights and counts the step.
    expect(result.state.step).toBe(1);
    expect(result.state.arms.map((arm) => arm.weight)).toEqual([0.85, 0.15]);
    expect(decideAllocation(result.state, { seed: 43 }).decision.step).toBe(2);
  });

  test('the decision record and the state survive JSON unchanged', () => {
    for (const state of [binaryState([[40, 60], [55, 45]]), continuousState([{ n: 50, mean: 3, variance: 2 }, { n: 40, mean: 3.4, variance: 1.5 }], { strategy: 'ucb' }), binaryState([[0, 0], [5, 5]], { guardRails: { minObservations: 5 } })]) {
      const result = decideAllocation(state, { seed: 7 });
      expect(JSON.parse(JSON.stringify(result.decision))).toEqual(result.decision);
      expect(parseBanditState(JSON.parse(JSON.stringify(result.state)))).toEqual(result.state);
    }
  });

  test('thompson needs a seed', () => {
    const error = inputError(() => decideAllocation(binaryState([[1, 1], [1, 1]])));
    expect(error.message).toMatch(/options\.seed/);
  });

  test('not enough outcomes on any arm: weights unchanged, the record says which arm', () => {
    const state = binaryState([[300, 700], [10, 5]], { guardRails: { minObservations: 30 } }, [0.9, 0.1]);
    const result = decideAllocation(state, { seed: 1 });
    expect(result.weights.map((weight) => weight.DesiredWeight)).toEqual([0.9, 0.1]);
    expect(result.decision).toMatchObject({ outcome: 'insufficient-data', changed: false, boundBy: [] });
    expect(result.decision.reason).toBe('weights unchanged: every arm needs at least 30 outcomes; v1 has 15');
    expect(result.decision.arms.map((arm) => arm.sufficient)).toEqual([true, false]);
    // Continuous arms with one outcome have no proper posterior under the reference prior.
    const continuous = decideAllocation(continuousState([{ n: 1, mean: 3, variance: 0 }, { n: 5, mean: 2, variance: 1 }]), { seed: 1 });
    expect(continuous.decision.arms[0]?.posterior).toBeNull();
    expect(continuous.decision.outcome).toBe('insufficient-data');
  });

  test('a state at 100/0 is repaired to the floor before the step is measured', () => {
    const result = decideAllocation(binaryState([[50, 50], [50, 50]], {}, [1, 0]), { seed: 3 });
    expect(result.decision.repairedPrevious).toBe(true);
    expect(result.decision.arms.map((arm) => arm.previousWeight)).toEqual([1, 0]);
    expect(result.decision.arms.map((arm) => arm.repairedPreviousWeight)).toEqual([0.95, 0.05]);
    expect(result.weights.map((weight) => weight.DesiredWeight)).toEqual([0.85, 0.15]);
  });

  const armCounts = fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 400 })), { minLength: 2, maxLength: 5 });

  test('property: decisions keep every guard rail, and a fixed seed reproduces them exactly', () => {
    fc.assert(
      fc.property(armCounts, fc.constantFrom('thompson' as const, 'ucb' as const), fc.nat(), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 50 }), (counts, strategy, seed, percentFloor, percentStep) => {
        const minShare = Math.min(percentFloor, Math.floor(100 / counts.length)) / 100;
        const maxStep = percentStep / 100;
        const state = binaryState(counts, { strategy, draws: 500, guardRails: { minShare, maxStep, minObservations: 1 } });
        const result = decideAllocation(state, { seed });
        const weights = result.weights.map((weight) => weight.DesiredWeight);
        expect(Math.abs(weights.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual(1e-12);
        for (const arm of result.decision.arms) {
          expect(arm.weight).toBeGreaterThanOrEqual(minShare);
          expect(Math.abs(arm.change)).toBeLessThanOrEqual(maxStep + 1e-12);
        }
        expect(decideAllocation(JSON.parse(JSON.stringify(state)), { seed })).toEqual(result);
      }),
      { numRuns: 60 },
    );
  });

  test('property: with identical data for every arm the weights do not drift beyond Monte Carlo noise', () => {
    const draws = 4_000;
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 5, max: 300 }), fc.integer({ min: 5, max: 300 }), fc.nat(), (k, successes, failures, seed) => {
        let state = binaryState(Array.from({ length: k }, () => [successes, failures] as const), { draws, guardRails: { minShare: 0.05, maxStep: 0.1, minObservations: 1 } });
        const noise = 5 * monteCarloError(1 / k, draws) + 2 / WEIGHT_UNITS;
        for (let step = 0; step < 4; step++) {
          const result = decideAllocation(state, { seed: seed + step });
          for (const weight of result.weights) expect(Math.abs(weight.DesiredWeight - 1 / k)).toBeLessThanOrEqual(noise);
          state = recordOutcomes(result.state, state.arms.map((arm) => ({ variant: arm.variant, successes, failures })));
        }
      }),
      { numRuns: 15 },
    );
  });

  test('property: from unequal weights, identical data pulls the allocation towards equal, never away', () => {
    // The projection is never further from the target than the (feasible) previous weights, so the
    // Euclidean distance to the equal split can only grow by twice the target's Monte Carlo noise. (A
    // single arm can move away from 1/k: when the arms that must rise are held by the step limit, an
    // arm already near 1/k gives up traffic to them.)
    const draws = 4_000;
    const distance = (weights: readonly number[]) => Math.sqrt(weights.reduce((sum, weight) => sum + (weight - 1 / weights.length) ** 2, 0));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 5 }), fc.integer({ min: 5, max: 200 }), fc.nat(), (relative, successes, seed) => {
        const k = relative.length;
        const state = binaryState(relative.map(() => [successes, 100] as const), { draws, guardRails: { minShare: 0, maxStep: 0.1, minObservations: 1 } }, relative);
        const result = decideAllocation(state, { seed });
        const noise = 2 * Math.sqrt(k) * 5 * monteCarloError(1 / k, draws) + k / WEIGHT_UNITS;
        const before = distance(result.decision.arms.map((arm) => arm.previousWeight));
        expect(distance(result.decision.arms.map((arm) => arm.weight))).toBeLessThanOrEqual(before + noise);
      }),
      { numRuns: 30 },
    );
  });

  test('property: insufficient data leaves the weights exactly as they were', () => {
    fc.assert(
      fc.property(armCounts, fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 5, maxLength: 5 }), fc.nat(), (counts, relative, seed) => {
        const fewest = Math.min(...counts.map(([s, f]) => s + f));
        const weights = toUnits(relative.slice(0, counts.length)).map((units) => units / WEIGHT_UNITS);
        const state = binaryState(counts, { draws: 200, guardRails: { minShare: 0, minObservations: fewest + 1 } }, weights);
        const result = decideAllocation(state, { seed });
        expect(result.decision.outcome).toBe('insufficient-data');
        expect(result.decision.changed).toBe(false);
        expect(result.weights.map((weight) => weight.DesiredWeight)).toEqual(weights);
        expect(result.state.arms.map((arm) => arm.weight)).toEqual(weights);
      }),
      { numRuns: 100 },
    );
  });

  test('determinism: the same seed gives the same record, another seed other probabilities', () => {
    const state = binaryState([[45, 55], [50, 50], [48, 52]]);
    const first = decideAllocation(state, { seed: 2024 });
    expect(decideAllocation(state, { seed: 2024 })).toEqual(first);
    const other = decideAllocation(state, { seed: 2025 });
    expect(other.decision.arms.map((arm) => arm.probabilityBest)).not.toEqual(first.decision.arms.map((arm) => arm.probabilityBest));
  });
});

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

describe('state validation', () => {
  test('names every problem at once, each with its path', () => {
    const valid = binaryState([[1, 1], [1, 1]]);
    const broken = {
      ...valid,
      version: 2,
      step: -1,
      settings: { strategy: 'epsilon-greedy', higherIsBetter: 'yes', draws: 10.5, exploration: -1, guardRails: { minShare: 0.123_456_7, maxStep: 0, minObservations: 0 } },
      prior: { alpha: 0, beta: 'one' },
      arms: [
        { variant: 'bad name', weight: -1, successes: 1.5, failures: -2 },
        { variant: 'v1', weight: 0, successes: 1, failures: 1, extra: true },
        { variant: 'v1', weight: 0, successes: 0, failures: 0 },
      ],
    };
    const error = inputError(() => parseBanditState(broken));
    expect(error.issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining([
        'state.version',
        'state.step',
        'state.settings.strategy',
        'state.settings.higherIsBetter',
        'state.settings.draws',
        'state.settings.exploration',
        'state.settings.guardRails.minShare',
        'state.settings.guardRails.maxStep',
        'state.settings.guardRails.minObservations',
        'state.prior.alpha',
        'state.prior.beta',
        'state.arms[0].variant',
        'state.arms[0].weight',
        'state.arms[0].successes',
        'state.arms[0].failures',
        'state.arms[1].extra',
        'state.arms[2].variant',
        'state.arms',
      ]),
    );
    for (const issue of error.issues) expect(error.message).toContain(`${issue.path}: `);
    expect(error.message).toContain('state.arms[2].variant: repeats arms[1].variant');
    expect(error.message).toContain('state.arms: must give at least one arm a weight above 0');
    expect(error.message).toContain('state.settings.guardRails.minShare: must be a whole multiple of 0.000001');
  });

  test('cross-field rules: floors that add up to more than 1, continuous sums no outcomes can have, too few outcomes for a variance', () => {
    const continuous = continuousState([{ n: 10, mean: 1, variance: 1 }, { n: 10, mean: 1, variance: 1 }, { n: 10, mean: 1, variance: 1 }]);
    const broken = {
      ...continuous,
      settings: { ...continuous.settings, guardRails: { minShare: 0.4, maxStep: 0.1, minObservations: 1 } },
      arms: [
        { variant: 'v0', weight: 1, count: 0, sum: 3, sumOfSquares: 0 },
        { variant: 'v1', weight: 1, count: 4, sum: 10, sumOfSquares: 5 },
        { variant: 'v2', weight: 1, count: 4, sum: 8, sumOfSquares: 20 },
      ],
    };
    const error = inputError(() => parseBanditState(broken));
    expect(error.issues).toEqual([
      { path: 'state.arms[0].count', message: 'is 0, so sum and sumOfSquares must be 0 too' },
      { path: 'state.arms[1].sumOfSquares', message: 'must be at least sum² / count (no real outcomes have these sums)' },
      { path: 'state.settings.guardRails.minShare', message: 'must be at most 1/3 with 3 arms (the floors cannot add up to more than all the traffic)' },
      { path: 'state.settings.guardRails.minObservations', message: 'must be at least 2 for continuous outcomes (a variance needs two)' },
    ]);
  });

  test('an unknown outcome type, fewer than 2 arms, a non-object', () => {
    expect(inputError(() => parseBanditState({ outcomeType: 'ordinal' })).message).toBe("state.outcomeType: must be 'binary' or 'continuous'");
    const valid = binaryState([[1, 1], [1, 1]]);
    expect(inputError(() => parseBanditState({ ...valid, arms: valid.arms.slice(0, 1) })).message).toBe('state.arms: must list at least 2 arms');
    expect(inputError(() => parseBanditState(null, 'stored')).message).toMatch(/^stored: /);
  });

  test('recordOutcomes names every bad entry: unknown and repeated variants, bad counts', () => {
    const state = binaryState([[1, 1], [1, 1]]);
    const error = inputError(() => recordOutcomes(state, [
      { variant: 'v0', successes: -1, failures: 2 },
      { variant: 'v9', successes: 1, failures: 1 },
      { variant: 'v0', successes: 1, failures: 0.5 },
      { variant: 'v1', successes: '3', failures: 0 },
    ] as never));
    expect(error.issues).toEqual([
      { path: 'outcomes[0].successes', message: 'must be at least 0' },
      { path: 'outcomes[2].failures', message: 'must be a whole number' },
      { path: 'outcomes[3].successes', message: 'must be a whole number' },
      { path: 'outcomes[1].variant', message: 'is not an arm of this bandit (v0, v1)' },
      { path: 'outcomes[2].variant', message: 'is listed more than once' },
    ]);
    const continuous = continuousState([{ n: 3, mean: 1, variance: 1 }, { n: 3, mean: 1, variance: 1 }]);
    expect(inputError(() => recordOutcomes(continuous, [{ variant: 'v0', count: 2, sum: 10, sumOfSquares: 1 }])).issues).toEqual([
      { path: 'outcomes[0].sumOfSquares', message: 'must be at least sum² / count (no real outcomes have these sums)' },
    ]);
  });

  test('createBanditState validates what it is given, and normalises DesiredWeights', () => {
    const state = createBanditState({ outcomeType: 'binary', weights: [{ VariantName: 'champion', DesiredWeight: 95 }, { VariantName: 'challenger', DesiredWeight: 5 }] });
    expect(state.arms.map((arm) => arm.weight)).toEqual([0.95, 0.05]);
    expect(state.settings).toEqual({ strategy: 'thompson', higherIsBetter: true, draws: 10_000, exploration: 1, guardRails: { minShare: 0.05, maxStep: 0.1, minObservations: 30 } });
    const error = inputError(() => createBanditState({ outcomeType: 'continuous', weights: [{ VariantName: 'a', DesiredWeight: 1 }], settings: { draws: 1, guardRails: { maxStep: 2 } } }));
    expect(error.issues.map((issue) => issue.path)).toEqual(['state.settings.draws', 'state.settings.guardRails.maxStep', 'state.arms']);
  });
});
