import fc from 'fast-check';
import reference from '../../fixtures/stats-reference.json';
import {
  decide,
  minimumSampleSizeMeans,
  minimumSampleSizeProportions,
  normalCdf,
  normalQuantile,
  regularizedIncompleteBeta,
  StatsInputError,
  studentTCdf,
  studentTQuantile,
  summarize,
  twoProportionZTest,
  welchTTest,
  type TwoProportionZTestResult,
  type WelchTTestResult,
} from '../../../lambda/shared/stats';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

interface Tolerance {
  relTol?: number;
  absTol?: number;
}

/** Fails with the label, both values and the allowed error, so a miss is readable in the report. */
function expectNear(actual: number, expected: number, tolerance: Tolerance, label = 'value'): void {
  const allowed = Math.max(tolerance.absTol ?? 0, (tolerance.relTol ?? 0) * Math.abs(expected));
  const error = Math.abs(actual - expected);
  if (!(error <= allowed) && actual !== expected) {
    throw new Error(`${label}: expected ${expected} within ${allowed}, got ${actual} (error ${error})`);
  }
}

/** Runs fn and returns the StatsInputError it throws (failing if it throws anything else or nothing). */
function inputError(fn: () => unknown): StatsInputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StatsInputError);
    return error as StatsInputError;
  }
  throw new Error('expected a StatsInputError, but nothing was thrown');
}

const SQRT_2PI = Math.sqrt(2 * Math.PI);
const normalPdf = (z: number): number => Math.exp(-0.5 * z * z) / SQRT_2PI;

/**
 * Independent check of studentTCdf for integer df: F(t) = 1/2 + ∫_0^t f(u) du with the density
 * f(u) = c_ν (1 + u²/ν)^{-(ν+1)/2}, integrated by composite Simpson's rule on 20 000 intervals.
 * c_ν = Γ((ν+1)/2) / (Γ(ν/2) sqrt(νπ)) is built from Γ(1/2) = √π and Γ(z+1) = zΓ(z) via
 * g(ν) = Γ((ν+1)/2)/Γ(ν/2): g(1) = 1/√π, g(2) = √π/2, g(ν+2) = g(ν)(ν+1)/ν.
 * No incomplete beta function, continued fraction or series is involved, so agreement is evidence
 * that the library's incomplete-beta machinery is right. Simpson's error is O(h⁴) ≈ 1e-14 here.
 */
function simpsonTCdf(t: number, df: number): number {
  let g = df % 2 === 1 ? 1 / Math.sqrt(Math.PI) : Math.sqrt(Math.PI) / 2;
  for (let nu = df % 2 === 1 ? 1 : 2; nu < df; nu += 2) g *= (nu + 1) / nu;
  const c = g / Math.sqrt(df * Math.PI);
  const f = (u: number): number => c * Math.pow(1 + (u * u) / df, -(df + 1) / 2);
  const intervals = 20_000;
  const h = t / intervals;
  let sum = f(0) + f(t);
  for (let i = 1; i < intervals; i++) sum += (i % 2 === 1 ? 4 : 2) * f(i * h);
  return 0.5 + (sum * h) / 3;
}

/** Closed forms of the t CDF for df = 1, 2, 3 (independent of the incomplete beta function). */
const closedFormTCdf: Record<1 | 2 | 3, (t: number) => number> = {
  1: (t) => 0.5 + Math.atan(t) / Math.PI,
  2: (t) => 0.5 + t / (2 * Math.sqrt(t * t + 2)),
  3: (t) => {
    const u = t / Math.sqrt(3);
    return 0.5 + (u / (1 + u * u) + Math.atan(u)) / Math.PI;
  },
};

// Arbitraries
const alphaArb = fc.constantFrom(0.001, 0.01, 0.05, 0.1, 0.2);
const dfArb = fc.oneof(
  fc.integer({ min: 1, max: 200 }),
  fc.double({ min: 0.5, max: 1e7, noNaN: true }),
  fc.double({ min: 1e3, max: 1e9, noNaN: true }),
);
const armArb = fc.integer({ min: 1, max: 5000 }).chain((trials) => fc.record({ successes: fc.integer({ min: 0, max: trials }), trials: fc.constant(trials) }));
const proportionInputArb = fc.record({ a: armArb, b: armArb, alpha: alphaArb }).map(({ a, b, alpha }) => ({
  successesA: a.successes,
  trialsA: a.trials,
  successesB: b.successes,
  trialsB: b.trials,
  alpha,
}));
const welchInputArb = fc.record({
  meanA: fc.double({ min: -1e3, max: 1e3, noNaN: true }),
  varianceA: fc.double({ min: 1e-6, max: 1e4, noNaN: true }),
  nA: fc.integer({ min: 2, max: 100_000 }),
  meanB: fc.double({ min: -1e3, max: 1e3, noNaN: true }),
  varianceB: fc.double({ min: 1e-6, max: 1e4, noNaN: true }),
  nB: fc.integer({ min: 2, max: 100_000 }),
  alpha: alphaArb,
});

function swapProportions(input: { successesA: number; trialsA: number; successesB: number; trialsB: number; alpha: number }) {
  return { successesA: input.successesB, trialsA: input.trialsB, successesB: input.successesA, trialsB: input.trialsA, alpha: input.alpha };
}

function expectNoNaN(result: TwoProportionZTestResult | WelchTTestResult): void {
  const numbers = Object.values(result).flatMap((value) => (Array.isArray(value) ? value : [value])).filter((value) => typeof value === 'number');
  expect(numbers.filter((value) => Number.isNaN(value))).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// Reference values
// ---------------------------------------------------------------------------------------------

describe('reference values recorded in test/fixtures/stats-reference.json', () => {
  test('every fixture records where its value came from', () => {
    const entries = [
      ...reference.normal.cdf,
      ...reference.normal.quantile,
      ...reference.studentT.cdf,
      ...reference.studentT.quantile,
      ...reference.twoProportionZTest,
      ...reference.welchTTest,
      ...reference.sampleSize.proportions,
      ...reference.sampleSize.means,
    ];
    expect(entries.length).toBeGreaterThanOrEqual(30);
    for (const entry of entries) expect(entry.source.length).toBeGreaterThan(40);
  });

  test.each(reference.normal.cdf)('normalCdf($z) equals the reference $expected', ({ z, expected, relTol }) => {
    expectNear(normalCdf(z), expected, { relTol }, `normalCdf(${z})`);
  });

  test.each(reference.normal.quantile)('normalQuantile($p) equals the reference $expected', ({ p, expected, relTol, absTol }) => {
    expectNear(normalQuantile(p), expected, { relTol, absTol }, `normalQuantile(${p})`);
  });

  test.each(reference.studentT.cdf)('studentTCdf($t, $df) equals the reference $expected', ({ t, df, expected, relTol }) => {
    expectNear(studentTCdf(t, df), expected, { relTol }, `studentTCdf(${t}, ${df})`);
  });

  test.each(reference.studentT.quantile)('studentTQuantile($p, $df) equals the reference $expected', ({ p, df, expected, relTol }) => {
    expectNear(studentTQuantile(p, df), expected, { relTol }, `studentTQuantile(${p}, ${df})`);
  });

  test.each(reference.twoProportionZTest)('twoProportionZTest reproduces $name', (fixture) => {
    const result = twoProportionZTest(fixture.input);
    const expected = fixture.expected as unknown as Record<string, number | number[]>;
    const tolerance = (name: string): Tolerance =>
      'absTol' in fixture ? { absTol: (fixture.absTol as Record<string, number>)[name] } : { relTol: (fixture as { relTol: number }).relTol };
    for (const [name, value] of Object.entries(expected)) {
      if (name === 'confidenceInterval') {
        const [lo, hi] = value as number[];
        expectNear(result.confidenceInterval[0], lo as number, tolerance(name), 'confidenceInterval[0]');
        expectNear(result.confidenceInterval[1], hi as number, tolerance(name), 'confidenceInterval[1]');
      } else if (name === 'zSquared') {
        expectNear(result.z * result.z, value as number, tolerance(name), 'z²');
      } else {
        expectNear(result[name as keyof TwoProportionZTestResult] as number, value as number, tolerance(name), name);
      }
    }
  });

  test.each(reference.welchTTest)('summarize and welchTTest reproduce $name from the raw data', (fixture) => {
    const a = summarize(fixture.a);
    const b = summarize(fixture.b);
    expect([a.n, b.n]).toEqual([fixture.a.length, fixture.b.length]);
    const result = welchTTest({ meanA: a.mean, varianceA: a.variance, nA: a.n, meanB: b.mean, varianceB: b.variance, nB: b.n });
    const tol = fixture.absTol;
    expectNear(a.mean, fixture.expected.meanA, { absTol: tol.meanA }, 'meanA');
    expectNear(b.mean, fixture.expected.meanB, { absTol: tol.meanB }, 'meanB');
    expectNear(result.difference, b.mean - a.mean, { absTol: 1e-12 }, 'difference');
    expectNear(result.t, fixture.expected.t, { absTol: tol.t }, 't');
    expectNear(result.degreesOfFreedom, fixture.expected.degreesOfFreedom, { absTol: tol.degreesOfFreedom }, 'degreesOfFreedom');
    expectNear(result.pValue, fixture.expected.pValue, { absTol: tol.pValue }, 'pValue');
    expectNear(result.confidenceInterval[0], fixture.expected.confidenceInterval[0] as number, { absTol: tol.confidenceInterval }, 'confidenceInterval[0]');
    expectNear(result.confidenceInterval[1], fixture.expected.confidenceInterval[1] as number, { absTol: tol.confidenceInterval }, 'confidenceInterval[1]');
  });

  test.each(reference.sampleSize.proportions)('minimumSampleSizeProportions($input) is $expected per arm', ({ input, expected }) => {
    expect(minimumSampleSizeProportions(input)).toBe(expected);
  });

  test.each(reference.sampleSize.means)('minimumSampleSizeMeans($input) is $expected per arm', ({ input, expected }) => {
    expect(minimumSampleSizeMeans(input)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------------------------

describe('the normal distribution', () => {
  test('normalQuantile inverts normalCdf across the lower half and deep into the tail', () => {
    fc.assert(
      fc.property(fc.double({ min: -37, max: 0, noNaN: true }), (z) => {
        expectNear(normalQuantile(normalCdf(z)), z, { relTol: 1e-12, absTol: 1e-15 }, `z = ${z}`);
      }),
    );
  });

  test('normalQuantile inverts normalCdf in the upper half up to the rounding of Φ(z) near 1', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 6, noNaN: true }), (z) => {
        // Φ(z) is stored with an absolute error of up to half an ulp of 1 (1.1e-16), which moves the quantile by that over φ(z).
        expectNear(normalQuantile(normalCdf(z)), z, { absTol: 1e-14 + 2.3e-16 / normalPdf(z) }, `z = ${z}`);
      }),
    );
  });

  test('normalCdf inverts normalQuantile to the precision the rounded quantile allows, for p up to 1/2', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-300, max: 0.5, noNaN: true }), (p) => {
        // Conditioning, not the algorithms: rounding z to a double moves Φ(z) by a relative |z|·ulp(z)/2
        // ≈ z²·1.1e-16, and e^{-z²/2} carries another ≈ z²·1.1e-16, i.e. together ~3e-13 at z = -37.
        const z = normalQuantile(p);
        expectNear(normalCdf(z), p, { relTol: 1e-14 + z * z * 4.5e-16 }, `p = ${p}`);
      }),
    );
  });

  test('normalCdf is symmetric: Φ(-z) = 1 - Φ(z)', () => {
    fc.assert(
      fc.property(fc.double({ min: -40, max: 40, noNaN: true }), (z) => {
        expectNear(normalCdf(-z), 1 - normalCdf(z), { absTol: 2.3e-16 }, `z = ${z}`);
      }),
    );
  });

  test('the distribution functions handle the ends of their domains', () => {
    expect([normalCdf(-Infinity), normalCdf(Infinity), normalCdf(0)]).toEqual([0, 1, 0.5]);
    expect([normalQuantile(0), normalQuantile(1), normalQuantile(0.5)]).toEqual([-Infinity, Infinity, 0]);
    expect(normalCdf(-38)).toBeGreaterThan(0); // 2.9e-316: subnormal but not rounded to 0
  });
});

// ---------------------------------------------------------------------------------------------
// Student's t distribution
// ---------------------------------------------------------------------------------------------

describe("Student's t distribution", () => {
  test.each([1, 2, 3, 5, 10, 30, 100])('studentTCdf agrees with Simpson-rule integration of the t density at df = %i', (df) => {
    for (const t of [-6, -2.5, -1, -0.3, 0.7, 1.96, 4]) {
      expectNear(studentTCdf(t, df), simpsonTCdf(t, df), { absTol: 1e-12 }, `t = ${t}, df = ${df}`);
    }
  });

  test('studentTCdf matches the closed forms for df = 1, 2 and 3', () => {
    fc.assert(
      fc.property(fc.constantFrom(1 as const, 2 as const, 3 as const), fc.double({ min: -1e3, max: 1e3, noNaN: true }), (df, t) => {
        const expected = closedFormTCdf[df](t);
        expectNear(studentTCdf(t, df), expected, { relTol: 1e-12, absTol: 1e-15 }, `t = ${t}, df = ${df}`);
      }),
    );
  });

  test('studentTCdf is non-decreasing in t', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e3, max: 1e3, noNaN: true }), fc.double({ min: -1e3, max: 1e3, noNaN: true }), dfArb, (x, y, df) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        // 1e-15 absorbs rounding where the algorithm switches branch; any real inversion would be far larger.
        expect(studentTCdf(lo, df)).toBeLessThanOrEqual(studentTCdf(hi, df) + 1e-15);
      }),
    );
  });

  test('studentTCdf is symmetric: F(-t) = 1 - F(t), and F(0) = 1/2', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), dfArb, (t, df) => {
        expectNear(studentTCdf(-t, df), 1 - studentTCdf(t, df), { absTol: 2.3e-16 }, `t = ${t}, df = ${df}`);
        expect(studentTCdf(0, df)).toBe(0.5);
      }),
    );
  });

  test('studentTCdf approaches the normal CDF as df grows, with a gap below 0.16/df', () => {
    fc.assert(
      fc.property(fc.double({ min: -10, max: 10, noNaN: true }), fc.double({ min: 1, max: 1e6, noNaN: true }), (t, df) => {
        const gap = (nu: number): number => Math.abs(studentTCdf(t, nu) - normalCdf(t));
        // sup_t |F_ν(t) - Φ(t)| · ν increases towards max (t³+t)φ(t)/4 ≈ 0.158 (the first Cornish–Fisher term).
        expect(gap(df) * df).toBeLessThan(0.16);
        expect(gap(10 * df)).toBeLessThanOrEqual(gap(df) + 1e-15);
      }),
    );
    expect(studentTCdf(1.5, Infinity)).toBe(normalCdf(1.5));
  });

  test('studentTCdf keeps relative precision in the tails for huge df, matching the first-order expansion in 1/df', () => {
    // F_ν(t) = Φ(t) - φ(t)(t³ + t)/(4ν) + O(t⁸/ν²) (the Edgeworth/Cornish–Fisher expansion). For |t| <= 8
    // and ν >= 1e8 the remainder is below 1e-10 relative while the first-order term is up to 1e-6
    // relative, so a match to 1e-9 shows the tail is computed, not just approximated by Φ.
    for (const t of [-8, -5, -2, 1.5]) {
      for (const df of [1e8, 1e9]) {
        const expansion = normalCdf(t) - (normalPdf(t) * (t ** 3 + t)) / (4 * df);
        expectNear(studentTCdf(t, df), expansion, { relTol: 1e-9 }, `t = ${t}, df = ${df}`);
      }
    }
  });

  test('the t distribution functions never return NaN, whatever the magnitude of t, p or df', () => {
    const anyDf = fc.oneof(fc.double({ min: 1e-3, max: 1e300, noNaN: true }), fc.constant(Infinity), dfArb);
    fc.assert(
      fc.property(fc.double({ noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), anyDf, (t, p, df) => {
        const cdf = studentTCdf(t, df);
        expect(cdf >= 0 && cdf <= 1).toBe(true);
        expect(Number.isNaN(studentTQuantile(p, df))).toBe(false);
      }),
    );
  });

  test('studentTQuantile inverts studentTCdf', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-15, max: 0.5, noNaN: true }), dfArb, (p, df) => {
        const t = studentTQuantile(p, df);
        expectNear(studentTCdf(t, df), p, { relTol: 1e-11 }, `p = ${p}, df = ${df}, t = ${t}`);
        const q = 1 - p; // its complement 1 - q is exact, while p may not be
        expectNear(studentTQuantile(q, df), -studentTQuantile(1 - q, df), { relTol: 1e-11, absTol: 1e-12 }, `symmetry at p = ${p}`);
      }),
    );
  });

  test('studentTQuantile recovers t from studentTCdf', () => {
    fc.assert(
      fc.property(fc.double({ min: -50, max: 0, noNaN: true }), dfArb, (t, df) => {
        const p = studentTCdf(t, df);
        fc.pre(p > 1e-300);
        expectNear(studentTQuantile(p, df), t, { relTol: 1e-9, absTol: 1e-12 }, `t = ${t}, df = ${df}`);
      }),
    );
  });

  test('regularizedIncompleteBeta satisfies I_x(a, b) = 1 - I_{1-x}(b, a) and I_x(1, 1) = x', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0.1, max: 500, noNaN: true }), fc.double({ min: 0.1, max: 500, noNaN: true }), (x, a, b) => {
        fc.pre(1 - (1 - x) === x); // otherwise the two sides are evaluated at different points
        expectNear(regularizedIncompleteBeta(x, a, b), 1 - regularizedIncompleteBeta(1 - x, b, a), { absTol: 1e-13 }, `x=${x}, a=${a}, b=${b}`);
        expectNear(regularizedIncompleteBeta(x, 1, 1), x, { absTol: 1e-15 }, `x=${x}`);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// summarize
// ---------------------------------------------------------------------------------------------

describe('summarize', () => {
  test('agrees with the two-pass mean and sample variance', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 2, maxLength: 200 }), (values) => {
        const n = values.length;
        const mean = values.reduce((sum, v) => sum + v, 0) / n;
        const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1);
        const summary = summarize(values);
        expect(summary.n).toBe(n);
        expectNear(summary.mean, mean, { relTol: 1e-9, absTol: 1e-9 }, 'mean');
        expectNear(summary.variance, variance, { relTol: 1e-9, absTol: 1e-9 }, 'variance');
      }),
    );
  });

  test('stays accurate when the values share a huge offset (where the naive sum-of-squares formula fails)', () => {
    expect(summarize([1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16])).toEqual({ n: 4, mean: 1e9 + 10, variance: 30 });
  });

  test('reports a variance of 0 for a single value', () => {
    expect(summarize([42])).toEqual({ n: 1, mean: 42, variance: 0 });
  });

  test('rejects an empty list and names the non-finite element', () => {
    expect(inputError(() => summarize([])).message).toBe('values: must be a non-empty array of finite numbers; got []');
    const error = inputError(() => summarize([1, 2, Number.NaN]));
    expect(error.field).toBe('values[2]');
    expect(error.message).toBe('values[2]: must be a finite number; got NaN');
  });
});

// ---------------------------------------------------------------------------------------------
// Two-proportion z-test
// ---------------------------------------------------------------------------------------------

describe('twoProportionZTest', () => {
  test('reports p-values in [0, 1] and never NaN', () => {
    fc.assert(
      fc.property(proportionInputArb, (input) => {
        const result = twoProportionZTest(input);
        expect(result.pValue).toBeGreaterThanOrEqual(0);
        expect(result.pValue).toBeLessThanOrEqual(1);
        expectNoNaN(result);
      }),
    );
  });

  test('swapping A and B flips the sign of the difference, z and the interval and keeps the p-value', () => {
    fc.assert(
      fc.property(proportionInputArb, (input) => {
        const forward = twoProportionZTest(input);
        const swapped = twoProportionZTest(swapProportions(input));
        // x + (-x) is exactly 0 (and sidesteps the +0/-0 distinction of toBe).
        expect(swapped.difference + forward.difference).toBe(0);
        expect(swapped.z + forward.z).toBe(0);
        expect(swapped.pValue).toBe(forward.pValue);
        expect(swapped.significant).toBe(forward.significant);
        expectNear(swapped.confidenceInterval[0], -forward.confidenceInterval[1], { absTol: 1e-15 }, 'lower limit');
        expectNear(swapped.confidenceInterval[1], -forward.confidenceInterval[0], { absTol: 1e-15 }, 'upper limit');
      }),
    );
  });

  test('the confidence interval contains the observed difference', () => {
    fc.assert(
      fc.property(proportionInputArb, (input) => {
        const { difference, confidenceInterval } = twoProportionZTest(input);
        expect(confidenceInterval[0]).toBeLessThanOrEqual(difference);
        expect(confidenceInterval[1]).toBeGreaterThanOrEqual(difference);
      }),
    );
  });

  test('is significant exactly when p < alpha, and the interval excludes 0 exactly when |difference| exceeds its margin', () => {
    fc.assert(
      fc.property(proportionInputArb, (input) => {
        const result = twoProportionZTest(input);
        expect(result.significant).toBe(result.pValue < input.alpha);
        const critical = normalQuantile(1 - input.alpha / 2);
        const excludesZero = result.confidenceInterval[0] > 0 || result.confidenceInterval[1] < 0;
        const margin = critical * result.unpooledStandardError;
        fc.pre(Math.abs(Math.abs(result.difference) - margin) > 1e-12);
        expect(excludesZero).toBe(Math.abs(result.difference) > margin);
      }),
    );
  });

  test('the test and the interval agree whenever the pooled and unpooled standard errors agree on the verdict', () => {
    // The z statistic uses the pooled SE (H0 variance) and the interval the unpooled SE, as in R's
    // prop.test, so "significant iff the CI excludes 0" holds except when |difference| falls between
    // critical·SE_pooled and critical·SE_unpooled. Outside that band they must agree.
    fc.assert(
      fc.property(proportionInputArb, (input) => {
        const result = twoProportionZTest(input);
        const critical = normalQuantile(1 - input.alpha / 2);
        const lowBand = critical * Math.min(result.standardError, result.unpooledStandardError);
        const highBand = critical * Math.max(result.standardError, result.unpooledStandardError);
        const gap = Math.abs(result.difference);
        fc.pre(gap > highBand * (1 + 1e-9) || gap < lowBand * (1 - 1e-9));
        const excludesZero = result.confidenceInterval[0] > 0 || result.confidenceInterval[1] < 0;
        expect(result.significant).toBe(excludesZero);
      }),
    );
  });

  test('the test and the interval can disagree inside that band (2/20 vs 7/20)', () => {
    const result = twoProportionZTest({ successesA: 2, trialsA: 20, successesB: 7, trialsB: 20 });
    expect(result.significant).toBe(false);
    expectNear(result.pValue, 0.0583, { absTol: 1e-4 }, 'pValue');
    expect(result.confidenceInterval[0]).toBeGreaterThan(0);
  });

  test('is not significant with p = 1 and no NaN when every trial in both arms succeeded or every one failed', () => {
    for (const successes of [0, 50]) {
      const result = twoProportionZTest({ successesA: successes, trialsA: 50, successesB: successes * 2, trialsB: 100 });
      expect(result).toMatchObject({ difference: 0, standardError: 0, z: 0, pValue: 1, significant: false, confidenceInterval: [0, 0] });
    }
    const extreme = twoProportionZTest({ successesA: 0, trialsA: 40, successesB: 40, trialsB: 40 });
    expect(extreme).toMatchObject({ difference: 1, unpooledStandardError: 0, significant: true, confidenceInterval: [1, 1] });
    expectNoNaN(extreme);
  });

  test('rejects impossible counts with an error that names the field', () => {
    expect(inputError(() => twoProportionZTest({ successesA: 130, trialsA: 120, successesB: 10, trialsB: 100 })).message).toBe(
      'successesA: must be a whole number between 0 and trialsA (120); got 130',
    );
    expect(inputError(() => twoProportionZTest({ successesA: 1, trialsA: 10, successesB: -1, trialsB: 100 })).message).toBe(
      'successesB: must be a whole number between 0 and trialsB (100); got -1',
    );
    expect(inputError(() => twoProportionZTest({ successesA: 1.5, trialsA: 10, successesB: 1, trialsB: 10 })).field).toBe('successesA');
    expect(inputError(() => twoProportionZTest({ successesA: 0, trialsA: 0, successesB: 1, trialsB: 10 })).message).toBe(
      'trialsA: must be a whole number greater than 0; got 0',
    );
    expect(inputError(() => twoProportionZTest({ successesA: 1, trialsA: 10, successesB: 1, trialsB: '10' as unknown as number })).message).toBe(
      'trialsB: must be a whole number greater than 0; got "10"',
    );
    expect(inputError(() => twoProportionZTest({ successesA: 1, trialsA: 10, successesB: 1, trialsB: 10, alpha: 1.5 })).message).toBe(
      'alpha: must be a number strictly between 0 and 1; got 1.5',
    );
  });

  test('names the field for any count above its number of trials', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 1e6 }), fc.boolean(), (trials, excess, armA) => {
        const arm = armA ? 'A' : 'B';
        const input = { successesA: 0, trialsA: 10, successesB: 0, trialsB: 10, [`successes${arm}`]: trials + excess, [`trials${arm}`]: trials };
        const error = inputError(() => twoProportionZTest(input));
        expect(error.field).toBe(`successes${arm}`);
        expect(error.message).toBe(`successes${arm}: must be a whole number between 0 and trials${arm} (${trials}); got ${trials + excess}`);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Welch t-test
// ---------------------------------------------------------------------------------------------

describe('welchTTest', () => {
  test('reports p-values in [0, 1] and Welch degrees of freedom between min(nA, nB) - 1 and nA + nB - 2', () => {
    fc.assert(
      fc.property(welchInputArb, (input) => {
        const result = welchTTest(input);
        expect(result.pValue).toBeGreaterThanOrEqual(0);
        expect(result.pValue).toBeLessThanOrEqual(1);
        expect(result.degreesOfFreedom).toBeGreaterThanOrEqual((Math.min(input.nA, input.nB) - 1) * (1 - 1e-12));
        expect(result.degreesOfFreedom).toBeLessThanOrEqual((input.nA + input.nB - 2) * (1 + 1e-12));
        expectNoNaN(result);
      }),
    );
  });

  test('swapping A and B flips the sign of the difference, t and the interval and keeps the p-value and df', () => {
    fc.assert(
      fc.property(welchInputArb, (input) => {
        const forward = welchTTest(input);
        const swapped = welchTTest({ meanA: input.meanB, varianceA: input.varianceB, nA: input.nB, meanB: input.meanA, varianceB: input.varianceA, nB: input.nA, alpha: input.alpha });
        expect(swapped.difference + forward.difference).toBe(0);
        expect(swapped.t + forward.t).toBe(0);
        expect(swapped.pValue).toBe(forward.pValue);
        expectNear(swapped.degreesOfFreedom, forward.degreesOfFreedom, { relTol: 1e-14 }, 'degreesOfFreedom');
        const scale = Math.abs(forward.difference) + forward.standardError;
        expectNear(swapped.confidenceInterval[0], -forward.confidenceInterval[1], { absTol: 1e-12 * scale }, 'lower limit');
        expectNear(swapped.confidenceInterval[1], -forward.confidenceInterval[0], { absTol: 1e-12 * scale }, 'upper limit');
      }),
    );
  });

  test('the confidence interval contains the observed difference', () => {
    fc.assert(
      fc.property(welchInputArb, (input) => {
        const { difference, confidenceInterval } = welchTTest(input);
        expect(confidenceInterval[0]).toBeLessThanOrEqual(difference);
        expect(confidenceInterval[1]).toBeGreaterThanOrEqual(difference);
      }),
    );
  });

  test('is significant iff p < alpha iff the interval excludes 0 (away from the floating-point boundary)', () => {
    fc.assert(
      fc.property(welchInputArb, (input) => {
        const result = welchTTest(input);
        expect(result.significant).toBe(result.pValue < input.alpha);
        const critical = studentTQuantile(1 - input.alpha / 2, result.degreesOfFreedom);
        fc.pre(Math.abs(Math.abs(result.t) - critical) > 1e-9 * critical);
        const excludesZero = result.confidenceInterval[0] > 0 || result.confidenceInterval[1] < 0;
        expect(result.significant).toBe(excludesZero);
      }),
    );
  });

  test("reduces to Student's pooled t-test when the arms have equal size and equal variance", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10_000 }), fc.double({ min: 1e-3, max: 1e3, noNaN: true }), fc.double({ min: -10, max: 10, noNaN: true }), (n, variance, shift) => {
        const result = welchTTest({ meanA: 0, varianceA: variance, nA: n, meanB: shift, varianceB: variance, nB: n });
        expectNear(result.degreesOfFreedom, 2 * n - 2, { relTol: 1e-12 }, 'df');
        expectNear(result.t, shift / Math.sqrt((2 * variance) / n), { relTol: 1e-12, absTol: 1e-300 }, 't');
      }),
    );
  });

  test('with both variances 0 and equal means it reports t = 0, p = 1 and is not significant', () => {
    const result = welchTTest({ meanA: 5, varianceA: 0, nA: 10, meanB: 5, varianceB: 0, nB: 12 });
    expect(result).toEqual({ difference: 0, standardError: 0, t: 0, degreesOfFreedom: 20, pValue: 1, confidenceInterval: [0, 0], significant: false });
  });

  test('with both variances 0 and different means it reports t = ±Infinity, p = 0 and is significant', () => {
    expect(welchTTest({ meanA: 5, varianceA: 0, nA: 10, meanB: 7, varianceB: 0, nB: 12 })).toEqual({
      difference: 2,
      standardError: 0,
      t: Infinity,
      degreesOfFreedom: 20,
      pValue: 0,
      confidenceInterval: [2, 2],
      significant: true,
    });
    expect(welchTTest({ meanA: 7, varianceA: 0, nA: 3, meanB: 5, varianceB: 0, nB: 3 })).toMatchObject({ t: -Infinity, pValue: 0, significant: true });
  });

  test('with one variance 0 the degrees of freedom are those of the other arm', () => {
    const result = welchTTest({ meanA: 1, varianceA: 0, nA: 50, meanB: 2, varianceB: 4, nB: 9 });
    expect(result.degreesOfFreedom).toBe(8);
    expectNoNaN(result);
  });

  test('rejects invalid summaries with an error that names the field', () => {
    const valid = { meanA: 1, varianceA: 1, nA: 10, meanB: 2, varianceB: 1, nB: 10 };
    expect(inputError(() => welchTTest({ ...valid, nA: 1 })).message).toBe('nA: must be a whole number of at least 2; got 1');
    expect(inputError(() => welchTTest({ ...valid, nB: 2.5 })).message).toBe('nB: must be a whole number of at least 2; got 2.5');
    expect(inputError(() => welchTTest({ ...valid, varianceB: -1 })).message).toBe('varianceB: must be a finite number of at least 0; got -1');
    expect(inputError(() => welchTTest({ ...valid, meanA: Number.NaN })).message).toBe('meanA: must be a finite number; got NaN');
    expect(inputError(() => welchTTest({ ...valid, varianceA: Infinity })).field).toBe('varianceA');
    expect(inputError(() => welchTTest({ ...valid, alpha: 0 })).field).toBe('alpha');
  });
});

// ---------------------------------------------------------------------------------------------
// Sample sizes
// ---------------------------------------------------------------------------------------------

describe('sample sizes', () => {
  const rateArb = fc.double({ min: 0.01, max: 0.9, noNaN: true });

  test('the proportions sample size decreases as the minimum detectable effect grows', () => {
    fc.assert(
      fc.property(rateArb, fc.double({ min: 0.001, max: 0.09, noNaN: true }), fc.double({ min: 0, max: 0.5, noNaN: true }), (baselineRate, small, extra) => {
        const large = small + extra * (1 - baselineRate - small);
        fc.pre(baselineRate + large < 1);
        const nSmall = minimumSampleSizeProportions({ baselineRate, minimumDetectableEffect: small });
        const nLarge = minimumSampleSizeProportions({ baselineRate, minimumDetectableEffect: large });
        expect(nLarge).toBeLessThanOrEqual(nSmall);
      }),
    );
  });

  test('the means sample size decreases as the minimum detectable effect grows and scales with the variance', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.1, max: 100, noNaN: true }), fc.double({ min: 0.01, max: 10, noNaN: true }), fc.double({ min: 1, max: 10, noNaN: true }), (standardDeviation, mde, factor) => {
        const base = minimumSampleSizeMeans({ standardDeviation, minimumDetectableEffect: mde });
        expect(minimumSampleSizeMeans({ standardDeviation, minimumDetectableEffect: mde * factor })).toBeLessThanOrEqual(base);
        expect(minimumSampleSizeMeans({ standardDeviation: standardDeviation * factor, minimumDetectableEffect: mde })).toBeGreaterThanOrEqual(base);
      }),
    );
  });

  test('the proportions sample size is the smallest n whose normal-approximation power reaches the target', () => {
    fc.assert(
      fc.property(rateArb, fc.double({ min: 0.005, max: 0.3, noNaN: true }), alphaArb, fc.constantFrom(0.6, 0.8, 0.9, 0.95), (p1, delta, alpha, power) => {
        const p2 = p1 + delta;
        fc.pre(p2 < 1);
        const n = minimumSampleSizeProportions({ baselineRate: p1, minimumDetectableEffect: delta, alpha, power });
        const pBar = (p1 + p2) / 2;
        // The power equation of R's power.prop.test (strict = FALSE).
        const powerAt = (m: number): number =>
          normalCdf((Math.sqrt(m) * delta - normalQuantile(1 - alpha / 2) * Math.sqrt(2 * pBar * (1 - pBar))) / Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)));
        expect(powerAt(n)).toBeGreaterThanOrEqual(power - 1e-9);
        if (n > 2) expect(powerAt(n - 1)).toBeLessThan(power + 1e-9);
      }),
    );
  });

  test('more power or a stricter alpha never needs fewer samples', () => {
    fc.assert(
      fc.property(rateArb, fc.double({ min: 0.005, max: 0.09, noNaN: true }), (baselineRate, minimumDetectableEffect) => {
        const at = (alpha: number, power: number) => minimumSampleSizeProportions({ baselineRate, minimumDetectableEffect, alpha, power });
        expect(at(0.05, 0.9)).toBeGreaterThanOrEqual(at(0.05, 0.8));
        expect(at(0.01, 0.8)).toBeGreaterThanOrEqual(at(0.05, 0.8));
      }),
    );
  });

  test('a negative effect (detecting a drop) needs the same n as the mirrored rise', () => {
    expect(minimumSampleSizeProportions({ baselineRate: 0.12, minimumDetectableEffect: -0.02 })).toBe(
      minimumSampleSizeProportions({ baselineRate: 0.1, minimumDetectableEffect: 0.02 }),
    );
  });

  test('rejects invalid design parameters with an error that names the field', () => {
    expect(inputError(() => minimumSampleSizeProportions({ baselineRate: 0, minimumDetectableEffect: 0.01 })).message).toBe(
      'baselineRate: must be a number strictly between 0 and 1; got 0',
    );
    expect(inputError(() => minimumSampleSizeProportions({ baselineRate: 0.95, minimumDetectableEffect: 0.1 })).message).toBe(
      'minimumDetectableEffect: must be non-zero and keep baselineRate + minimumDetectableEffect strictly between 0 and 1 (baselineRate is 0.95); got 0.1',
    );
    expect(inputError(() => minimumSampleSizeProportions({ baselineRate: 0.1, minimumDetectableEffect: 0 })).field).toBe('minimumDetectableEffect');
    expect(inputError(() => minimumSampleSizeProportions({ baselineRate: 0.1, minimumDetectableEffect: 0.01, power: 1 })).field).toBe('power');
    expect(inputError(() => minimumSampleSizeMeans({ standardDeviation: 0, minimumDetectableEffect: 1 })).message).toBe(
      'standardDeviation: must be a finite number greater than 0; got 0',
    );
    expect(inputError(() => minimumSampleSizeMeans({ standardDeviation: 1, minimumDetectableEffect: 0 })).field).toBe('minimumDetectableEffect');
    expect(inputError(() => minimumSampleSizeMeans({ standardDeviation: 1, minimumDetectableEffect: 1, alpha: -0.05 })).field).toBe('alpha');
  });
});

// ---------------------------------------------------------------------------------------------
// Decision rule
// ---------------------------------------------------------------------------------------------

describe('decide', () => {
  const significantUp = { difference: 0.02, significant: true };
  const significantDown = { difference: -0.02, significant: true };
  const notSignificant = { difference: 0.01, significant: false };

  test('keeps running until both arms reach the required sample size, even when the result is already significant', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e6 }),
        fc.integer({ min: 0, max: 2e6 }),
        fc.integer({ min: 0, max: 2e6 }),
        fc.constantFrom(significantUp, significantDown, notSignificant),
        (requiredSampleSize, nA, nB, result) => {
          fc.pre(nA < requiredSampleSize || nB < requiredSampleSize);
          expect(decide({ result, nA, nB, requiredSampleSize })).toBe('keep-running');
        },
      ),
    );
  });

  test('at the horizon a significant result names the arm with the higher metric', () => {
    expect(decide({ result: significantUp, nA: 1000, nB: 1000, requiredSampleSize: 1000 })).toBe('b-wins');
    expect(decide({ result: significantDown, nA: 1200, nB: 1000, requiredSampleSize: 1000 })).toBe('a-wins');
  });

  test('at the horizon a non-significant result is no-difference', () => {
    expect(decide({ result: notSignificant, nA: 5000, nB: 5000, requiredSampleSize: 1000 })).toBe('no-difference');
  });

  test('for a metric where lower is better the winner flips', () => {
    expect(decide({ result: significantUp, nA: 1000, nB: 1000, requiredSampleSize: 1000, higherIsBetter: false })).toBe('a-wins');
    expect(decide({ result: significantDown, nA: 1000, nB: 1000, requiredSampleSize: 1000, higherIsBetter: false })).toBe('b-wins');
  });

  test('reads the verdict straight from a test result', () => {
    const [published] = reference.twoProportionZTest;
    const result = twoProportionZTest(published!.input);
    const required = minimumSampleSizeProportions({ baselineRate: result.pA, minimumDetectableEffect: 0.2 });
    expect(required).toBeLessThanOrEqual(128);
    expect(decide({ result, nA: published!.input.trialsA, nB: published!.input.trialsB, requiredSampleSize: required })).toBe('b-wins');
    expect(decide({ result, nA: published!.input.trialsA, nB: published!.input.trialsB, requiredSampleSize: 10_000 })).toBe('keep-running');
  });

  test('rejects invalid counts with an error that names the field', () => {
    expect(inputError(() => decide({ result: significantUp, nA: -1, nB: 10, requiredSampleSize: 10 })).message).toBe('nA: must be a whole number of at least 0; got -1');
    expect(inputError(() => decide({ result: significantUp, nA: 10, nB: 10.5, requiredSampleSize: 10 })).field).toBe('nB');
    expect(inputError(() => decide({ result: significantUp, nA: 10, nB: 10, requiredSampleSize: 0 })).message).toBe(
      'requiredSampleSize: must be a whole number of at least 1; got 0',
    );
    expect(inputError(() => decide({ result: { difference: 1, significant: 'yes' as unknown as boolean }, nA: 1, nB: 1, requiredSampleSize: 1 })).field).toBe('result.significant');
  });
});

describe('StatsInputError', () => {
  test('carries the field, the rule and the offending value', () => {
    const error = inputError(() => studentTCdf(1, 0));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('StatsInputError');
    expect({ field: error.field, rule: error.rule, value: error.value }).toEqual({
      field: 'df',
      rule: 'must be a number greater than 0 (Infinity means the normal distribution)',
      value: 0,
    });
    expect(inputError(() => normalQuantile(1.2)).message).toBe('p: must be a probability between 0 and 1; got 1.2');
    expect(inputError(() => studentTQuantile(0.5, Number.NaN)).field).toBe('df');
    expect(inputError(() => normalCdf(Number.NaN)).field).toBe('z');
  });
});
