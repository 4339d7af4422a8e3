// Pure statistics for A/B testing of ML models: distribution functions, the two-proportion z-test,
// Welch's t-test, fixed-horizon sample sizes and the decision rule the analysis Lambda applies.
//
// Nothing here talks to AWS and nothing depends on a library: the special functions are implemented
// from their textbook definitions so the numbers can be audited (and are checked against published
// reference values in test/fixtures/stats-reference.json).
//
// Methods and accuracy (checked against mpmath/SciPy while writing, and by the tests):
//   normalCdf          erfc via the incomplete gamma function Q(1/2, z²/2) (series / Lentz continued
//                      fraction); relative error ~1e-14 in either tail, down to Φ(-37) ≈ 1e-300
//   normalQuantile     Acklam's rational approximation (relative error 1.15e-9) refined by one
//                      Halley step against normalCdf: ~1e-15
//   studentTCdf        P(T <= -|t|) = I_x(ν/2, 1/2)/2 with x = ν/(ν+t²): Lentz continued fraction
//                      (Numerical Recipes `betacf`) for df < 200; for df >= 200 the DiDonato–Morris
//                      asymptotic expansion (ACM TOMS 708, BGRAT), because there x is within 1/ν of 1
//                      and the continued fraction loses ~ν·1e-16 relative (3e-8 at df = 1e9). The tail
//                      keeps ~1e-13 relative precision at every df, fractional df included.
//   studentTQuantile   closed forms for df = 1 and 2, otherwise safeguarded Newton on the CDF: ~1e-13

// ---------------------------------------------------------------------------------------------
// Errors and validation
// ---------------------------------------------------------------------------------------------

/**
 * Thrown when an argument is outside the domain of a function. `field` names the offending input
 * and the message starts with it, e.g.
 * `successesA: must be a whole number between 0 and trialsA (120); got 130`.
 */
export class StatsInputError extends Error {
  override readonly name = 'StatsInputError';

  constructor(
    readonly field: string,
    readonly rule: string,
    readonly value: unknown,
  ) {
    super(`${field}: ${rule}; got ${describe(value)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && !Number.isNaN(value);
}

function requireFinite(field: string, value: unknown): number {
  if (!isNumber(value) || !Number.isFinite(value)) throw new StatsInputError(field, 'must be a finite number', value);
  return value;
}

function requireNumber(field: string, value: unknown): number {
  if (!isNumber(value)) throw new StatsInputError(field, 'must be a number', value);
  return value;
}

function requireOpenUnit(field: string, value: unknown): number {
  if (!isNumber(value) || !(value > 0 && value < 1)) throw new StatsInputError(field, 'must be a number strictly between 0 and 1', value);
  return value;
}

function requireProbability(field: string, value: unknown): number {
  if (!isNumber(value) || !(value >= 0 && value <= 1)) throw new StatsInputError(field, 'must be a probability between 0 and 1', value);
  return value;
}

function requireDegreesOfFreedom(field: string, value: unknown): number {
  if (!isNumber(value) || !(value > 0)) throw new StatsInputError(field, 'must be a number greater than 0 (Infinity means the normal distribution)', value);
  return value;
}

function requireWholeNumber(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new StatsInputError(field, min === 0 ? 'must be a whole number of at least 0' : `must be a whole number of at least ${min}`, value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------------------------

/** Convergence tolerance: the spacing of doubles just above 1 (a tighter test can fail to trigger forever). */
const EPSILON = Number.EPSILON;
const FPMIN = 1e-300;
const LN_SQRT_PI = 0.5723649429247001; // ln(sqrt(pi)) = lnGamma(1/2)
const LN_SQRT_2PI = 0.9189385332046728; // ln(sqrt(2 pi))
const SQRT_2PI = 2.5066282746310002;

// Lanczos coefficients of Numerical Recipes, 3rd ed., section 6.1 (`gammln`, 14 terms, shift 671/128).
const LANCZOS = [
  57.1562356658629235, -59.5979603554754912, 14.1360979747417471, -0.491913816097620199, 0.339946499848118887e-4, 0.465236289270485756e-4, -0.983744753048795646e-4,
  0.158088703224912494e-3, -0.210264441724104883e-3, 0.217439618115212643e-3, -0.164318106536763890e-3, 0.844182239838527433e-4, -0.261908384015814087e-4,
  0.368991826595316234e-5,
];

/** Natural logarithm of the gamma function for x > 0 (Lanczos, Numerical Recipes 3rd ed. `gammln`). */
export function logGamma(x: number): number {
  requireNumber('x', x);
  if (!(x > 0)) throw new StatsInputError('x', 'must be a number greater than 0', x);
  if (x === Infinity) return Infinity;
  let y = x;
  let tmp = x + 5.2421875;
  tmp = (x + 0.5) * Math.log(tmp) - tmp;
  let series = 0.999999999999997092;
  for (const c of LANCZOS) series += c / ++y;
  return tmp + Math.log((SQRT_2PI * series) / x);
}

/** Stirling-series remainder lnGamma(z) - [(z - 1/2) ln z - z + ln sqrt(2 pi)]; truncation error < 1e-17 for z >= 20. */
function stirlingCorrection(z: number): number {
  const z2 = 1 / (z * z);
  return (1 / z) * (1 / 12 - z2 * (1 / 360 - z2 * (1 / 1260 - z2 * (1 / 1680 - z2 / 1188))));
}

/**
 * lnGamma(a) - lnGamma(a + b) for a, b > 0. When a is large the difference is formed from the
 * Stirling series with log1p instead of subtracting two large logarithms, so it keeps its digits
 * (this is what keeps the t distribution accurate at df in the millions).
 */
function logGammaRatio(a: number, b: number): number {
  if (a < 20) return logGamma(a) - logGamma(a + b);
  const sum = a + b;
  return -(a - 0.5) * Math.log1p(b / a) - b * Math.log(sum) + b + stirlingCorrection(a) - stirlingCorrection(sum);
}

/** ln B(a, b), without cancellation when one argument is large. */
function logBeta(a: number, b: number): number {
  const big = Math.max(a, b);
  const small = Math.min(a, b);
  return logGamma(small) + logGammaRatio(big, small);
}

/** Lentz's modified continued fraction for I_x(a, b) (Numerical Recipes 3rd ed. `betacf`). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  // Converges in O(sqrt(max(a, b))) steps at worst; the callers route the slow regime (huge a with
  // x within ~1/a of 1) to the TOMS 708 expansion, so a fixed cap only guards against pathological input.
  for (let m = 1; m <= 20_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) <= EPSILON) return h;
  }
  return h; // Not reached for the arguments this module produces; the last convergent is the best estimate.
}

/**
 * I_x(a, b) with y = 1 - x supplied by the caller, so that x close to 1 keeps its precision.
 * ln x and ln y may also be supplied (the t CDF computes them with log1p).
 */
function incompleteBeta(a: number, b: number, x: number, y: number, logX = Math.log(x), logY = Math.log(y)): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const front = Math.exp(a * logX + b * logY - logBeta(a, b));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, y)) / b;
}

/** Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  requireProbability('x', x);
  if (!isNumber(a) || !(a > 0) || a === Infinity) throw new StatsInputError('a', 'must be a finite number greater than 0', a);
  if (!isNumber(b) || !(b > 0) || b === Infinity) throw new StatsInputError('b', 'must be a finite number greater than 0', b);
  return incompleteBeta(a, b, x, 1 - x);
}

/**
 * The regularized incomplete gamma functions P(1/2, s) = erf(sqrt(s)) and Q(1/2, s) = erfc(sqrt(s))
 * for s >= 0: series for P when s < 1.5, Lentz's continued fraction for Q otherwise (Numerical
 * Recipes `gser`/`gcf`). The one computed directly has full relative precision. Also returns
 * Q / (e^{-s} s^{1/2} / Γ(1/2)), which stays finite where Q itself underflows.
 */
function incompleteGammaHalf(s: number): { p: number; q: number; qOverFront: number } {
  const a = 0.5;
  if (s === 0) return { p: 0, q: 1, qOverFront: Infinity };
  const front = Math.exp(-s + a * Math.log(s) - LN_SQRT_PI);
  if (s < a + 1) {
    const p = incompleteGammaSeries(a, s) * front;
    return { p, q: 1 - p, qOverFront: (1 - p) / front };
  }
  const h = incompleteGammaContinuedFraction(a, s);
  const q = front * h;
  return { p: 1 - q, q, qOverFront: h };
}

/**
 * The series of the lower incomplete gamma, without its front factor e^{-x} x^a / Γ(a): P(a, x) is
 * the front times this sum. Converges quickly for x < a + 1 (Numerical Recipes `gser`).
 */
export function incompleteGammaSeries(a: number, x: number): number {
  let ap = a;
  let term = 1 / a;
  let sum = term;
  for (let n = 0; n < 1000; n++) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
  }
  return sum;
}

/**
 * Lentz's continued fraction of the upper incomplete gamma, without its front factor: Q(a, x) is the
 * front times this value. Converges quickly for x >= a + 1 (Numerical Recipes `gcf`).
 */
export function incompleteGammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) <= EPSILON) break;
  }
  return h;
}

/**
 * I_x(a, 1/2) for large a by the asymptotic expansion of DiDonato & Morris (ACM TOMS 708, 1992,
 * routine BGRAT), given ln x. It expands around Q(1/2, z) with z = -(a - 1/4) ln x, so it needs
 * neither x nor 1 - x explicitly: this is the regime (a huge, x within 1/a of 1) where the
 * continued fraction loses digits because x itself is only known to 1e-16. Returns NaN if the
 * series has not converged in 30 terms (ln x too large), so the caller can fall back.
 */
function incompleteBetaLargeA(a: number, logX: number): number {
  const b = 0.5;
  const bm1 = b - 1;
  const nu = a + 0.5 * bm1;
  const z = -nu * logX;
  if (!(z > 0)) return NaN;
  // r = e^{-z} z^b / Γ(b);  u = r · Γ(a + b) / (Γ(a) ν^b)
  const logR = -z + b * Math.log(z) - LN_SQRT_PI;
  const logU = logR - logGammaRatio(a, b) - b * Math.log(nu);
  const v = 0.25 / (nu * nu);
  const t2 = 0.25 * logX * logX;
  let j = incompleteGammaHalf(z).qOverFront; // Q(b, z) / r
  let sum = j;
  let t = 1;
  let cn = 1;
  let n2 = 0;
  const c: number[] = [0];
  const d: number[] = [0];
  for (let n = 1; n <= 30; n++) {
    const bp2n = b + n2;
    j = (bp2n * (bp2n + 1) * j + (z + bp2n + 1) * t) * v;
    n2 += 2;
    t *= t2;
    cn /= n2 * (n2 + 1);
    c[n] = cn;
    let s = 0;
    let coef = b - n;
    for (let i = 1; i < n; i++) {
      s += coef * (c[i] as number) * (d[n - i] as number);
      coef += b;
    }
    const dn = bm1 * cn + s / n;
    d[n] = dn;
    const dj = dn * j;
    sum += dj;
    if (!(sum > 0)) return NaN;
    if (Math.abs(dj) <= EPSILON * sum) return Math.exp(logU + Math.log(sum));
  }
  return NaN;
}

// ---------------------------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------------------------

/** Standard normal density. */
function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z - LN_SQRT_2PI);
}

/**
 * Standard normal CDF Φ(z) = P(Z <= z). Uses Φ(z) = erfc(-z/√2)/2 with erfc from the incomplete
 * gamma function, so the lower tail keeps full relative precision (Φ(-10) ≈ 7.62e-24, not 0).
 */
export function normalCdf(z: number): number {
  requireNumber('z', z);
  // Beyond |z| = 40 the tail (< 4e-350) is below the smallest double.
  if (z > 40) return 1;
  if (z < -40) return 0;
  const { p, q } = incompleteGammaHalf(0.5 * z * z);
  // p = erf(|z|/√2), q = erfc(|z|/√2)
  return z < 0 ? 0.5 * q : z < 1.7 ? 0.5 + 0.5 * p : 1 - 0.5 * q;
}

// Acklam's rational approximation to the normal quantile (relative error < 1.15e-9).
const ACKLAM_A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const ACKLAM_B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const ACKLAM_C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const ACKLAM_D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const ACKLAM_P_LOW = 0.02425;

function acklam(p: number): number {
  const [a0, a1, a2, a3, a4, a5] = ACKLAM_A as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = ACKLAM_B as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = ACKLAM_C as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = ACKLAM_D as [number, number, number, number];
  if (p < ACKLAM_P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  // Central region; only p <= 0.5 reaches here.
  const q = p - 0.5;
  const r = q * q;
  return ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) / (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
}

/**
 * Standard normal quantile Φ⁻¹(p): Acklam's algorithm refined by one Halley step against
 * normalCdf. normalQuantile(0) = -Infinity and normalQuantile(1) = Infinity.
 */
export function normalQuantile(p: number): number {
  requireProbability('p', p);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  // Work in the lower tail, where p carries full relative precision (1 - p is exact for p >= 0.5).
  const lower = p > 0.5 ? 1 - p : p;
  let x = acklam(lower);
  // Halley step: u = (Φ(x) - p) / φ(x), formed in log space so a subnormal tail (p < 1e-308,
  // where φ(x) underflows) does not produce Infinity · 0.
  const e = normalCdf(x) - lower;
  if (e !== 0) {
    const u = Math.sign(e) * Math.exp(Math.log(Math.abs(e)) + 0.5 * x * x + LN_SQRT_2PI);
    if (Number.isFinite(u)) x = x - u / (1 + 0.5 * x * u);
  }
  return p > 0.5 ? -x : x;
}

// ---------------------------------------------------------------------------------------------
// Student's t distribution
// ---------------------------------------------------------------------------------------------

/** Degrees of freedom from which the TOMS 708 expansion replaces the continued fraction. */
const LARGE_DF = 200;

/** P(T <= -|t|) for T ~ t(df), computed directly (no cancellation in the tail). */
function studentTLowerTail(absT: number, df: number): number {
  if (absT === 0) return 0.5;
  if (absT === Infinity) return 0;
  // Near 0 the tail is 1/2 - |t|·f(0) + O(|t|³); this also keeps subnormal t² out of the logarithms below.
  if (absT * absT * (1 + 1 / df) < 1e-16) return 0.5 - absT * studentTPdf(0, df);
  const ratio = (absT * absT) / df; // t²/ν
  if (!(ratio < 1e300)) {
    // x = ν/(ν + t²) < 1e-300 (t² may even overflow): I_x(a, 1/2) = x^a / (a·B(a, 1/2)) · (1 + O(x)).
    const a = df / 2;
    return 0.5 * Math.exp(a * (Math.log(df) - 2 * Math.log(absT)) - Math.log(a) - logBeta(a, 0.5));
  }
  const logX = -Math.log1p(ratio); // ln(ν / (ν + t²))
  if (df >= LARGE_DF) {
    const tail = 0.5 * incompleteBetaLargeA(df / 2, logX);
    if (!Number.isNaN(tail)) return tail;
  }
  // x = ν / (ν + t²), y = 1 - x = t² / (ν + t²)
  const x = 1 / (1 + ratio);
  const y = ratio / (1 + ratio);
  const logY = Math.log(ratio) + logX;
  return 0.5 * incompleteBeta(df / 2, 0.5, x, y, logX, logY);
}

/**
 * Student's t CDF P(T <= t) with df > 0 degrees of freedom (need not be an integer: Welch's test
 * produces fractional df). df = Infinity gives the normal CDF. Uses
 * P(T <= -|t|) = I_{ν/(ν+t²)}(ν/2, 1/2) / 2.
 */
export function studentTCdf(t: number, df: number): number {
  requireNumber('t', t);
  requireDegreesOfFreedom('df', df);
  if (df === Infinity) return normalCdf(t);
  const tail = studentTLowerTail(Math.abs(t), df);
  return t < 0 ? tail : 1 - tail;
}

/** Student's t density. */
function studentTPdf(t: number, df: number): number {
  if (df === Infinity) return normalPdf(t);
  return Math.exp(-((df + 1) / 2) * Math.log1p((t * t) / df) - 0.5 * Math.log(df) - logBeta(df / 2, 0.5));
}

/**
 * Student's t quantile: the t with P(T <= t) = p. Closed forms for df = 1 (Cauchy) and df = 2;
 * otherwise Newton's method on studentTCdf inside a bracket that falls back to bisection, started
 * from the Cornish-Fisher expansion around the normal quantile. Relative accuracy ~1e-13.
 */
export function studentTQuantile(p: number, df: number): number {
  requireProbability('p', p);
  requireDegreesOfFreedom('df', df);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  if (df === Infinity) return normalQuantile(p);
  const lower = p > 0.5 ? 1 - p : p;
  const sign = p > 0.5 ? 1 : -1;
  if (df === 1) return (sign * 1) / Math.tan(Math.PI * lower);
  if (df === 2) return (sign * (1 - 2 * lower)) / Math.sqrt(2 * lower * (1 - lower));
  return sign * upperQuantileMagnitude(lower, df);
}

/** The s > 0 with P(T <= -s) = q, for 0 < q < 1/2. */
function upperQuantileMagnitude(q: number, df: number): number {
  const tail = (s: number): number => studentTLowerTail(s, df);
  // Cornish–Fisher start (Abramowitz & Stegun 26.7.5), then make it a bracket [lo, hi] with tail(lo) > q >= tail(hi).
  const z = -normalQuantile(q);
  const z3 = z * z * z;
  let s = z + (z3 + z) / (4 * df) + (5 * z3 * z * z + 16 * z3 + 3 * z) / (96 * df * df);
  if (!(s > 0) || !Number.isFinite(s)) s = Math.max(z, 1);
  let lo = s;
  let hi = s;
  if (tail(s) > q) {
    while (tail(hi) > q) {
      lo = hi;
      hi *= 2;
      if (hi === Infinity) return Infinity;
    }
  } else {
    while (tail(lo) <= q) {
      hi = lo;
      lo /= 2;
    }
  }
  s = Math.sqrt(lo * hi);
  for (let iteration = 0; iteration < 200; iteration++) {
    const f = tail(s) - q; // decreasing in s
    if (f === 0) return s;
    if (f > 0) lo = s;
    else hi = s;
    // Newton step: d tail / ds = -pdf(s).
    const density = studentTPdf(s, df);
    let next = s + f / density;
    if (!(next > lo && next < hi) || !Number.isFinite(next)) {
      next = hi / lo > 4 ? Math.sqrt(lo * hi) : 0.5 * (lo + hi);
    }
    if (Math.abs(next - s) <= 1e-15 * s || hi - lo <= 4 * Number.EPSILON * hi) return next;
    s = next;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Descriptive statistics
// ---------------------------------------------------------------------------------------------

export interface Summary {
  readonly n: number;
  readonly mean: number;
  /** Sample variance (divisor n - 1). Reported as 0 when n = 1, where it is undefined. */
  readonly variance: number;
}

/**
 * Count, mean and sample variance (divisor n - 1) in one numerically stable pass (Welford's
 * algorithm). Requires at least one finite value; with a single value the variance is reported as 0
 * (welchTTest rejects n < 2, so that 0 never feeds a test).
 */
export function summarize(values: readonly number[]): Summary {
  if (!Array.isArray(values) || values.length === 0) throw new StatsInputError('values', 'must be a non-empty array of finite numbers', values);
  let mean = 0;
  let m2 = 0;
  let n = 0;
  for (const value of values) {
    requireFinite(`values[${n}]`, value);
    n += 1;
    const delta = value - mean;
    mean += delta / n;
    m2 += delta * (value - mean);
  }
  return { n, mean, variance: n > 1 ? m2 / (n - 1) : 0 };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/** What every two-sample test result has; the decision rule needs only this. */
export interface TestOutcome {
  /** B minus A. */
  readonly difference: number;
  readonly pValue: number;
  readonly significant: boolean;
}

export interface TwoProportionZTestInput {
  readonly successesA: number;
  readonly trialsA: number;
  readonly successesB: number;
  readonly trialsB: number;
  /** Two-sided significance level; also sets the confidence level 1 - alpha. Default 0.05. */
  readonly alpha?: number;
}

export interface TwoProportionZTestResult extends TestOutcome {
  readonly pA: number;
  readonly pB: number;
  /** pB - pA. */
  readonly difference: number;
  /** Pooled standard error sqrt(p̄(1-p̄)(1/nA + 1/nB)), the denominator of z. */
  readonly standardError: number;
  /** Unpooled standard error sqrt(pA(1-pA)/nA + pB(1-pB)/nB), used for the confidence interval. */
  readonly unpooledStandardError: number;
  readonly z: number;
  /** Two-sided p-value 2·Φ(-|z|). */
  readonly pValue: number;
  /** Wald interval for pB - pA at confidence 1 - alpha (unpooled SE), as R's prop.test(correct = FALSE). */
  readonly confidenceInterval: readonly [number, number];
  /** pValue < alpha. */
  readonly significant: boolean;
}

function requireAlpha(alpha: unknown): number {
  return requireOpenUnit('alpha', alpha);
}

function requireTrialsAndSuccesses(successesField: string, successes: unknown, trialsField: string, trials: unknown): [number, number] {
  if (typeof trials !== 'number' || !Number.isSafeInteger(trials) || trials < 1) {
    throw new StatsInputError(trialsField, 'must be a whole number greater than 0', trials);
  }
  if (typeof successes !== 'number' || !Number.isSafeInteger(successes) || successes < 0 || successes > trials) {
    throw new StatsInputError(successesField, `must be a whole number between 0 and ${trialsField} (${trials})`, successes);
  }
  return [successes, trials];
}

/**
 * Two-sided two-proportion z-test of H0: pA = pB (identical to R's
 * `prop.test(c(successesA, successesB), c(trialsA, trialsB), correct = FALSE)`, whose X-squared is z²).
 *
 * The test statistic uses the pooled standard error (the variance under H0); the confidence interval
 * uses the unpooled one. Because the two standard errors differ, the test and the interval can
 * disagree near the boundary: `significant` is defined by the p-value only.
 *
 * Degenerate data: when every trial in both arms succeeded (or every one failed) the pooled standard
 * error is 0 and the arms are identical, so z = 0, pValue = 1 and the result is not significant.
 */
export function twoProportionZTest(input: TwoProportionZTestInput): TwoProportionZTestResult {
  const [successesA, trialsA] = requireTrialsAndSuccesses('successesA', input.successesA, 'trialsA', input.trialsA);
  const [successesB, trialsB] = requireTrialsAndSuccesses('successesB', input.successesB, 'trialsB', input.trialsB);
  const alpha = requireAlpha(input.alpha ?? 0.05);

  const pA = successesA / trialsA;
  const pB = successesB / trialsB;
  const difference = pB - pA;
  const pooled = (successesA + successesB) / (trialsA + trialsB);
  const standardError = Math.sqrt(pooled * (1 - pooled) * (1 / trialsA + 1 / trialsB));
  const unpooledStandardError = Math.sqrt((pA * (1 - pA)) / trialsA + (pB * (1 - pB)) / trialsB);
  // standardError is 0 only when pooled is 0 or 1, and then pA = pB, so difference is 0 too.
  const z = standardError > 0 ? difference / standardError : 0;
  const pValue = Math.min(1, 2 * normalCdf(-Math.abs(z)));
  const margin = normalQuantile(1 - alpha / 2) * unpooledStandardError;
  return {
    pA,
    pB,
    difference,
    standardError,
    unpooledStandardError,
    z,
    pValue,
    confidenceInterval: [difference - margin, difference + margin],
    significant: pValue < alpha,
  };
}

export interface WelchTTestInput {
  readonly meanA: number;
  /** Sample variance of arm A (divisor nA - 1). */
  readonly varianceA: number;
  readonly nA: number;
  readonly meanB: number;
  /** Sample variance of arm B (divisor nB - 1). */
  readonly varianceB: number;
  readonly nB: number;
  /** Two-sided significance level; also sets the confidence level 1 - alpha. Default 0.05. */
  readonly alpha?: number;
}

export interface WelchTTestResult extends TestOutcome {
  /** meanB - meanA. */
  readonly difference: number;
  /** sqrt(varianceA/nA + varianceB/nB). */
  readonly standardError: number;
  readonly t: number;
  /** Welch–Satterthwaite degrees of freedom (fractional). */
  readonly degreesOfFreedom: number;
  /** Two-sided p-value 2·P(T_df <= -|t|). */
  readonly pValue: number;
  /** difference ± t_{1-alpha/2, df} · standardError. */
  readonly confidenceInterval: readonly [number, number];
  /** pValue < alpha. */
  readonly significant: boolean;
}

/**
 * Two-sided Welch t-test of H0: meanA = meanB from summary statistics (identical to R's
 * `t.test(b, a, var.equal = FALSE)` with the sign convention difference = meanB - meanA).
 *
 * Both variances 0 (every observation in each arm identical) has no sampling noise to measure, so
 * the result is defined as the limit of vanishing variance, never NaN:
 *   - equal means: t = 0, pValue = 1, not significant;
 *   - different means: t = ±Infinity (sign of the difference), pValue = 0, significant;
 *   - standardError = 0, confidenceInterval = [difference, difference], and degreesOfFreedom =
 *     nA + nB - 2 (the Welch formula is 0/0 there; the pooled-test df is the conventional value).
 * Note that JSON.stringify renders ±Infinity as null. When only one variance is 0 the ordinary
 * formulas apply (df reduces to n - 1 of the other arm).
 */
export function welchTTest(input: WelchTTestInput): WelchTTestResult {
  const meanA = requireFinite('meanA', input.meanA);
  const varianceA = requireFinite('varianceA', input.varianceA);
  if (varianceA < 0) throw new StatsInputError('varianceA', 'must be a finite number of at least 0', varianceA);
  const nA = requireWholeNumber('nA', input.nA, 2);
  const meanB = requireFinite('meanB', input.meanB);
  const varianceB = requireFinite('varianceB', input.varianceB);
  if (varianceB < 0) throw new StatsInputError('varianceB', 'must be a finite number of at least 0', varianceB);
  const nB = requireWholeNumber('nB', input.nB, 2);
  const alpha = requireAlpha(input.alpha ?? 0.05);

  const difference = meanB - meanA;
  const shareA = varianceA / nA;
  const shareB = varianceB / nB;
  const variance = shareA + shareB;
  const standardError = Math.sqrt(variance);

  if (!(standardError > 0)) {
    const t = difference === 0 ? 0 : difference > 0 ? Infinity : -Infinity;
    const pValue = difference === 0 ? 1 : 0;
    return { difference, standardError: 0, t, degreesOfFreedom: nA + nB - 2, pValue, confidenceInterval: [difference, difference], significant: pValue < alpha };
  }

  // Welch–Satterthwaite, written as a ratio of shares so tiny variances do not underflow.
  const ratioA = shareA / variance;
  const ratioB = shareB / variance;
  const degreesOfFreedom = 1 / ((ratioA * ratioA) / (nA - 1) + (ratioB * ratioB) / (nB - 1));
  const t = difference / standardError;
  const pValue = Math.min(1, 2 * studentTCdf(-Math.abs(t), degreesOfFreedom));
  const margin = studentTQuantile(1 - alpha / 2, degreesOfFreedom) * standardError;
  return {
    difference,
    standardError,
    t,
    degreesOfFreedom,
    pValue,
    confidenceInterval: [difference - margin, difference + margin],
    significant: pValue < alpha,
  };
}

// ---------------------------------------------------------------------------------------------
// Sample size
// ---------------------------------------------------------------------------------------------

export interface SampleSizeProportionsInput {
  /** Conversion (success) rate of the control arm, strictly between 0 and 1. */
  readonly baselineRate: number;
  /** Absolute change to detect (e.g. 0.02 for 10% -> 12%); non-zero, and baselineRate + it must stay in (0, 1). */
  readonly minimumDetectableEffect: number;
  /** Two-sided significance level. Default 0.05. */
  readonly alpha?: number;
  /** Probability of detecting the effect when it is real. Default 0.8. */
  readonly power?: number;
}

/**
 * Per-arm sample size for the two-sided two-proportion z-test:
 * n = (z_{1-α/2}·sqrt(2·p̄(1-p̄)) + z_{1-β}·sqrt(p1(1-p1) + p2(1-p2)))² / δ², rounded up, with
 * p1 = baselineRate, p2 = p1 + δ and p̄ = (p1 + p2)/2. This is the equation R's
 * `power.prop.test` solves (with strict = FALSE). A negative δ (detecting a drop) is allowed.
 * Never less than 2, the smallest arm welchTTest accepts.
 */
export function minimumSampleSizeProportions(input: SampleSizeProportionsInput): number {
  const p1 = requireOpenUnit('baselineRate', input.baselineRate);
  const delta = requireFinite('minimumDetectableEffect', input.minimumDetectableEffect);
  const p2 = p1 + delta;
  if (delta === 0 || !(p2 > 0 && p2 < 1)) {
    throw new StatsInputError('minimumDetectableEffect', `must be non-zero and keep baselineRate + minimumDetectableEffect strictly between 0 and 1 (baselineRate is ${p1})`, delta);
  }
  const alpha = requireAlpha(input.alpha ?? 0.05);
  const power = requireOpenUnit('power', input.power ?? 0.8);
  const zAlpha = normalQuantile(1 - alpha / 2);
  const zBeta = normalQuantile(power);
  const pBar = (p1 + p2) / 2;
  const root = zAlpha * Math.sqrt(2 * pBar * (1 - pBar)) + zBeta * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2));
  return ceilWithTolerance((root * root) / (delta * delta));
}

export interface SampleSizeMeansInput {
  /** Common standard deviation of the metric in each arm (> 0). */
  readonly standardDeviation: number;
  /** Absolute difference in means to detect (non-zero). */
  readonly minimumDetectableEffect: number;
  /** Two-sided significance level. Default 0.05. */
  readonly alpha?: number;
  /** Default 0.8. */
  readonly power?: number;
}

/**
 * Per-arm sample size for a two-sided two-sample comparison of means (normal approximation):
 * n = 2·(z_{1-α/2} + z_{1-β})²·σ² / δ², rounded up (never less than 2). Being a normal
 * approximation it is slightly below the t-based answer (R power.t.test) for small n.
 */
export function minimumSampleSizeMeans(input: SampleSizeMeansInput): number {
  const sigma = requireFinite('standardDeviation', input.standardDeviation);
  if (!(sigma > 0)) throw new StatsInputError('standardDeviation', 'must be a finite number greater than 0', sigma);
  const delta = requireFinite('minimumDetectableEffect', input.minimumDetectableEffect);
  if (delta === 0) throw new StatsInputError('minimumDetectableEffect', 'must be a non-zero finite number', delta);
  const alpha = requireAlpha(input.alpha ?? 0.05);
  const power = requireOpenUnit('power', input.power ?? 0.8);
  const zSum = normalQuantile(1 - alpha / 2) + normalQuantile(power);
  const ratio = sigma / delta;
  return ceilWithTolerance(2 * zSum * zSum * ratio * ratio);
}

/** ceil that does not turn 64.00000000000001 (rounding noise) into 65. Never returns less than 2. */
function ceilWithTolerance(n: number): number {
  const rounded = Math.round(n);
  const result = Math.abs(n - rounded) <= 1e-9 * Math.max(1, n) ? rounded : Math.ceil(n);
  if (!Number.isFinite(result)) throw new StatsInputError('minimumDetectableEffect', 'is too small relative to the noise: the required sample size is not finite', n);
  return Math.max(2, result);
}

// ---------------------------------------------------------------------------------------------
// Decision rule
// ---------------------------------------------------------------------------------------------

export type Decision = 'keep-running' | 'a-wins' | 'b-wins' | 'no-difference';

export interface DecideInput {
  /** A twoProportionZTest or welchTTest result (only difference and significant are read). */
  readonly result: Pick<TestOutcome, 'difference' | 'significant'>;
  /** Observations collected so far in each arm. */
  readonly nA: number;
  readonly nB: number;
  /** Per-arm sample size fixed before the experiment (minimumSampleSize*). */
  readonly requiredSampleSize: number;
  /** Whether larger values of the metric are better (conversion, accuracy: yes; latency, error rate: no). Default true. */
  readonly higherIsBetter?: boolean;
}

/**
 * Fixed-horizon decision rule. The test is only read once both arms have reached the sample size
 * computed in advance: before that the answer is 'keep-running' even if the current p-value is
 * below alpha, because repeatedly peeking and stopping at the first significant result inflates
 * the false-positive rate far above alpha (sequential designs need adjusted boundaries, which this
 * rule does not implement). At the horizon, a significant result names the better arm by the sign
 * of difference = B - A (flipped when lower is better); otherwise 'no-difference'.
 */
export function decide(input: DecideInput): Decision {
  const nA = requireWholeNumber('nA', input.nA, 0);
  const nB = requireWholeNumber('nB', input.nB, 0);
  const required = requireWholeNumber('requiredSampleSize', input.requiredSampleSize, 1);
  const result = input.result as unknown;
  if (typeof result !== 'object' || result === null) throw new StatsInputError('result', 'must be a test result with difference and significant', result);
  const { difference, significant } = input.result;
  if (typeof significant !== 'boolean') throw new StatsInputError('result.significant', 'must be a boolean', significant);
  if (!isNumber(difference)) throw new StatsInputError('result.difference', 'must be a number', difference);

  if (nA < required || nB < required) return 'keep-running';
  if (!significant || difference === 0) return 'no-difference';
  const bIsBetter = (difference > 0) === (input.higherIsBetter ?? true);
  return bIsBetter ? 'b-wins' : 'a-wins';
}
