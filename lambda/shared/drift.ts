// Data drift statistics for the near-real-time drift detector (seed pattern "Data Drift Detection").
//
// Pure functions, no AWS imports: population stability index (numeric bins and categorical
// proportions), the two-sample Kolmogorov–Smirnov test, Pearson's chi-square goodness-of-fit test,
// the baseline format written by the baselining step (validated with zod), a builder for baselines,
// and the parser of SageMaker data-capture lines.
//
// References:
//   - PSI: Siddiqi, "Credit Risk Scorecards" (2006): PSI = Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ) over bin proportions.
//   - KS p-value: Numerical Recipes in C (2nd ed.) §14.3, probks() with Stephens' (1970) correction
//     λ = (√nₑ + 0.12 + 0.11/√nₑ)·D, nₑ = n·m/(n+m).
//   - Incomplete gamma: Numerical Recipes in C (2nd ed.) §6.2, gser()/gcf()/gammq(); gammln() §6.1.
import * as z from './zod';
import { incompleteGammaContinuedFraction, incompleteGammaSeries, logGamma } from './stats';

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

/** Bad arguments to a statistic (mismatched lengths, negative proportions, empty samples...). */
export class DriftInputError extends Error {
  override readonly name = 'DriftInputError';
}

/** The baseline document is missing fields or holds inconsistent values. `field` is the path of the first problem. */
export class BaselineError extends Error {
  override readonly name = 'BaselineError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export type CaptureProblem = 'malformed-capture' | 'unexpected-field';

/** A data-capture line that cannot be turned into model-input rows. `field` names where, `problem` what kind. */
export class CaptureParseError extends Error {
  override readonly name = 'CaptureParseError';
  constructor(
    message: string,
    readonly field: string,
    readonly problem: CaptureProblem,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Population stability index
// ---------------------------------------------------------------------------------------------------

function checkProportions(name: string, values: readonly number[]): void {
  values.forEach((value, index) => {
    if (!Number.isFinite(value) || value < 0) {
      throw new DriftInputError(`${name}[${index}]: must be a finite number ≥ 0; got ${value}`);
    }
  });
}

/** Replaces zero entries with epsilon and rescales so the entries sum to 1. */
function smooth(name: string, values: readonly number[], epsilon: number): number[] {
  const replaced = values.map((value) => (value > 0 ? value : epsilon));
  const total = replaced.reduce((sum, value) => sum + value, 0);
  if (!(total > 0)) {
    throw new DriftInputError(`${name}: proportions sum to 0`);
  }
  return replaced.map((value) => value / total);
}

/**
 * Population stability index Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ) between two vectors of bin proportions (counts
 * work too: both are renormalised). Zero bins are replaced with `epsilon` before renormalising, so the
 * index stays finite. Always ≥ 0; 0 for identical distributions. Rule of thumb: < 0.1 stable,
 * 0.1–0.25 moderate shift, > 0.25 significant shift.
 */
export function populationStabilityIndex(expected: readonly number[], actual: readonly number[], epsilon = 1e-4): number {
  if (expected.length !== actual.length) {
    throw new DriftInputError(`actual: has ${actual.length} bins; expected has ${expected.length}`);
  }
  if (expected.length === 0) {
    throw new DriftInputError('expected: needs at least one bin');
  }
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new DriftInputError(`epsilon: must be a finite number > 0; got ${epsilon}`);
  }
  checkProportions('expected', expected);
  checkProportions('actual', actual);
  const e = smooth('expected', expected, epsilon);
  const a = smooth('actual', actual, epsilon);
  let psi = 0;
  for (let i = 0; i < e.length; i += 1) {
    psi += (a[i]! - e[i]!) * Math.log(a[i]! / e[i]!);
  }
  // Each term is ≥ 0 mathematically; clamp the rounding of identical inputs.
  return Math.max(0, psi);
}

function checkEdges(edges: readonly number[]): void {
  edges.forEach((edge, index) => {
    if (!Number.isFinite(edge)) {
      throw new DriftInputError(`edges[${index}]: must be a finite number; got ${edge}`);
    }
    if (index > 0 && !(edge > edges[index - 1]!)) {
      throw new DriftInputError(`edges[${index}]: edges must be strictly increasing; ${edge} follows ${edges[index - 1]}`);
    }
  });
}

/** Index of the bin holding value: bins are (-∞,e₀], (e₀,e₁], ..., (eₖ,+∞), i.e. the number of edges < value. */
export function binIndex(value: number, edges: readonly number[]): number {
  let low = 0;
  let high = edges.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (edges[mid]! < value) {
      low = mid + 1;
    } else {
      high = mid;
    }
  }
  return low;
}

/** Counts of values per bin (length edges.length + 1). */
export function binCounts(values: readonly number[], edges: readonly number[]): number[] {
  checkEdges(edges);
  const counts = new Array<number>(edges.length + 1).fill(0);
  values.forEach((value, index) => {
    if (!Number.isFinite(value)) {
      throw new DriftInputError(`values[${index}]: must be a finite number; got ${value}`);
    }
    counts[binIndex(value, edges)]! += 1;
  });
  return counts;
}

/** Proportion of values per bin (length edges.length + 1, sums to 1). Bins: (-∞,e₀], (e₀,e₁], ..., (eₖ,+∞). */
export function binProportions(values: readonly number[], edges: readonly number[]): number[] {
  if (values.length === 0) {
    throw new DriftInputError('values: needs at least one value');
  }
  return binCounts(values, edges).map((count) => count / values.length);
}

/** The '__other__' bucket pooling categories the baseline never saw. */
export const OTHER_CATEGORY = '__other__';

/** Aligns baseline proportions and observed counts over the baseline's categories, pooling unseen ones into '__other__'. */
function alignCategories(
  expectedProportions: Readonly<Record<string, number>>,
  observedCounts: Readonly<Record<string, number>>,
): { categories: string[]; expected: number[]; observed: number[] } {
  const categories = Object.keys(expectedProportions);
  if (categories.length === 0) {
    throw new DriftInputError('expectedProportions: needs at least one category');
  }
  for (const [category, proportion] of Object.entries(expectedProportions)) {
    if (!Number.isFinite(proportion) || proportion < 0) {
      throw new DriftInputError(`expectedProportions.${category}: must be a finite number ≥ 0; got ${proportion}`);
    }
  }
  const observedByCategory = new Map<string, number>(categories.map((category) => [category, 0]));
  let other = 0;
  for (const [category, count] of Object.entries(observedCounts)) {
    if (!Number.isFinite(count) || count < 0) {
      throw new DriftInputError(`observedCounts.${category}: must be a finite number ≥ 0; got ${count}`);
    }
    if (observedByCategory.has(category)) {
      observedByCategory.set(category, observedByCategory.get(category)! + count);
    } else {
      other += count;
    }
  }
  const expected = categories.map((category) => expectedProportions[category]!);
  const observed = categories.map((category) => observedByCategory.get(category)!);
  if (other > 0) {
    categories.push(OTHER_CATEGORY);
    expected.push(0);
    observed.push(other);
  }
  const total = observed.reduce((sum, count) => sum + count, 0);
  if (!(total > 0)) {
    throw new DriftInputError('observedCounts: no observations');
  }
  return { categories, expected, observed };
}

/** PSI between baseline category proportions and observed category counts (unseen categories pooled into '__other__'). */
export function categoricalPsi(
  expectedProportions: Readonly<Record<string, number>>,
  observedCounts: Readonly<Record<string, number>>,
  epsilon = 1e-4,
): number {
  const { expected, observed } = alignCategories(expectedProportions, observedCounts);
  return populationStabilityIndex(expected, observed, epsilon);
}

// ---------------------------------------------------------------------------------------------------
// Kolmogorov–Smirnov
// ---------------------------------------------------------------------------------------------------

/**
 * Kolmogorov distribution survival function Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}
 * (Numerical Recipes probks): 1 for λ → 0, 0 for λ → ∞.
 */
export function kolmogorovSurvival(lambda: number): number {
  if (!(lambda > 0)) {
    return 1;
  }
  const EPS1 = 1e-6;
  const EPS2 = 1e-16;
  const a2 = -2 * lambda * lambda;
  let fac = 2;
  let sum = 0;
  let termbf = 0;
  for (let j = 1; j <= 100; j += 1) {
    const term = fac * Math.exp(a2 * j * j);
    sum += term;
    if (Math.abs(term) <= EPS1 * termbf || Math.abs(term) <= EPS2 * sum) {
      return Math.min(1, Math.max(0, sum));
    }
    fac = -fac;
    termbf = Math.abs(term);
  }
  // Did not converge: only for very small λ, where the survival is 1.
  return 1;
}

export interface KsResult {
  /** D = sup |F_a(x) − F_b(x)| ∈ [0, 1]. */
  readonly statistic: number;
  /** Asymptotic two-sided p-value (Kolmogorov distribution, Stephens correction). */
  readonly pValue: number;
}

function sortedFinite(name: string, values: readonly number[]): Float64Array {
  if (values.length === 0) {
    throw new DriftInputError(`${name}: needs at least one value`);
  }
  const sorted = Float64Array.from(values);
  sorted.forEach((value, index) => {
    if (!Number.isFinite(value)) {
      throw new DriftInputError(`${name}[${index}]: must be a finite number; got ${value}`);
    }
  });
  return sorted.sort();
}

/** Two-sample Kolmogorov–Smirnov test: exact D by merging the sorted samples; asymptotic p-value with nₑ = n·m/(n+m). */
export function ksTwoSample(a: readonly number[], b: readonly number[]): KsResult {
  const x = sortedFinite('a', a);
  const y = sortedFinite('b', b);
  const n = x.length;
  const m = y.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const value = Math.min(x[i]!, y[j]!);
    // Step past every copy of value in both samples so ties are handled exactly.
    while (i < n && x[i] === value) i += 1;
    while (j < m && y[j] === value) j += 1;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const effective = Math.sqrt((n * m) / (n + m));
  const pValue = kolmogorovSurvival((effective + 0.12 + 0.11 / effective) * d);
  return { statistic: d, pValue };
}

// ---------------------------------------------------------------------------------------------------
// Incomplete gamma and chi-square
// ---------------------------------------------------------------------------------------------------

/** ln Γ(x) for x > 0: the statistics module's Lanczos approximation (Numerical Recipes 3rd ed.). */
export function lnGamma(x: number): number {
  if (!(x > 0)) {
    throw new DriftInputError(`x: lnGamma needs x > 0; got ${x}`);
  }
  return logGamma(x);
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x)/Γ(a). */
export function regularizedGammaP(a: number, x: number): number {
  return 1 - regularizedGammaQ(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) (Numerical Recipes gammq). */
export function regularizedGammaQ(a: number, x: number): number {
  if (!(a > 0) || !Number.isFinite(a)) {
    throw new DriftInputError(`a: must be a finite number > 0; got ${a}`);
  }
  if (Number.isNaN(x) || x < 0) {
    throw new DriftInputError(`x: must be ≥ 0; got ${x}`);
  }
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  const front = Math.exp(-x + a * Math.log(x) - lnGamma(a));
  const q = x < a + 1 ? 1 - front * incompleteGammaSeries(a, x) : front * incompleteGammaContinuedFraction(a, x);
  return Math.min(1, Math.max(0, q));
}

/** Upper tail of the chi-square distribution with df degrees of freedom. */
export function chiSquareSurvival(statistic: number, degreesOfFreedom: number): number {
  return regularizedGammaQ(degreesOfFreedom / 2, statistic / 2);
}

export interface ChiSquareResult {
  readonly statistic: number;
  readonly degreesOfFreedom: number;
  readonly pValue: number;
  /** Categories tested, in order (baseline categories, then '__other__' when unseen categories were observed). */
  readonly categories: readonly string[];
}

/**
 * Pearson chi-square goodness-of-fit of observed category counts against baseline proportions.
 * Categories the baseline never saw are pooled into '__other__'; baseline proportions of 0 (and the
 * '__other__' bucket) are smoothed with epsilon and renormalised, so an unseen category gives a large
 * but finite statistic. degreesOfFreedom = categories − 1; with a single category the test is
 * degenerate and reports statistic 0, p-value 1.
 */
export function chiSquareTest(
  expectedProportions: Readonly<Record<string, number>>,
  observedCounts: Readonly<Record<string, number>>,
  epsilon = 1e-4,
): ChiSquareResult {
  const { categories, expected, observed } = alignCategories(expectedProportions, observedCounts);
  const degreesOfFreedom = categories.length - 1;
  if (degreesOfFreedom < 1) {
    return { statistic: 0, degreesOfFreedom: 0, pValue: 1, categories };
  }
  const proportions = smooth('expectedProportions', expected, epsilon);
  const total = observed.reduce((sum, count) => sum + count, 0);
  let statistic = 0;
  for (let i = 0; i < categories.length; i += 1) {
    const e = proportions[i]! * total;
    statistic += (observed[i]! - e) ** 2 / e;
  }
  return { statistic, degreesOfFreedom, pValue: chiSquareSurvival(statistic, degreesOfFreedom), categories };
}

// ---------------------------------------------------------------------------------------------------
// Baseline
// ---------------------------------------------------------------------------------------------------

/** Most reference values a numeric feature keeps for the KS test. */
export const MAX_REFERENCE_SAMPLE = 10_000;
const SUM_TOLERANCE = 1e-3;

const finite = z.number().check(z.refine(Number.isFinite, { message: 'must be a finite number' }));
const proportion = finite.check(z.refine((value) => value >= 0 && value <= 1, { message: 'must be between 0 and 1' }));

const NumericFeatureSchema = z
  .strictObject({
    type: z.literal('numeric'),
    binEdges: z.array(finite).check(z.minLength(1, { message: 'needs at least one edge' })),
    binProportions: z.array(proportion),
    sample: z
      .array(finite)
      .check(
        z.minLength(1, { message: 'needs at least one reference value' }),
        z.maxLength(MAX_REFERENCE_SAMPLE, { message: `holds at most ${MAX_REFERENCE_SAMPLE} reference values` }),
      ),
  })
  .check(
    z.superRefine((feature, context) => {
      for (let i = 1; i < feature.binEdges.length; i += 1) {
        if (!(feature.binEdges[i]! > feature.binEdges[i - 1]!)) {
          context.addIssue({
            code: 'custom',
            path: ['binEdges', i],
            message: `must be strictly increasing; ${feature.binEdges[i]} follows ${feature.binEdges[i - 1]}`,
          });
          return;
        }
      }
      if (feature.binProportions.length !== feature.binEdges.length + 1) {
        context.addIssue({
          code: 'custom',
          path: ['binProportions'],
          message: `must have binEdges.length + 1 = ${feature.binEdges.length + 1} entries; has ${feature.binProportions.length}`,
        });
        return;
      }
      const sum = feature.binProportions.reduce((total, value) => total + value, 0);
      if (Math.abs(sum - 1) > SUM_TOLERANCE) {
        context.addIssue({ code: 'custom', path: ['binProportions'], message: `must sum to 1; sums to ${sum}` });
      }
    }),
  );

const CategoricalFeatureSchema = z
  .strictObject({
    type: z.literal('categorical'),
    proportions: z.record(z.string(), proportion),
  })
  .check(
    z.superRefine((feature, context) => {
      const values = Object.values(feature.proportions);
      if (values.length === 0) {
        context.addIssue({ code: 'custom', path: ['proportions'], message: 'needs at least one category' });
        return;
      }
      const sum = values.reduce((total, value) => total + value, 0);
      if (Math.abs(sum - 1) > SUM_TOLERANCE) {
        context.addIssue({ code: 'custom', path: ['proportions'], message: `must sum to 1; sums to ${sum}` });
      }
    }),
  );

export const BaselineSchema = z
  .strictObject({
    version: z.literal(1),
    features: z.record(z.string(), z.discriminatedUnion('type', [NumericFeatureSchema, CategoricalFeatureSchema])),
    columns: z.array(z.string().check(z.minLength(1))).check(z.minLength(1, { message: 'needs at least one column' })),
  })
  .check(
    z.superRefine((baseline, context) => {
      const seen = new Set<string>();
      baseline.columns.forEach((column, index) => {
        if (seen.has(column)) {
          context.addIssue({ code: 'custom', path: ['columns', index], message: `duplicate column '${column}'` });
        }
        seen.add(column);
      });
      if (Object.keys(baseline.features).length === 0) {
        context.addIssue({ code: 'custom', path: ['features'], message: 'needs at least one feature' });
      }
      for (const name of Object.keys(baseline.features)) {
        if (!seen.has(name)) {
          context.addIssue({ code: 'custom', path: ['features', name], message: `feature '${name}' is not one of the columns` });
        }
      }
    }),
  );

export type Baseline = z.infer<typeof BaselineSchema>;
export type NumericFeatureBaseline = z.infer<typeof NumericFeatureSchema>;
export type CategoricalFeatureBaseline = z.infer<typeof CategoricalFeatureSchema>;

/** `features.age.binEdges[3]` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      text += `[${segment}]`;
    } else {
      text += text.length === 0 ? String(segment) : `.${String(segment)}`;
    }
  }
  return text.length === 0 ? '(root)' : text;
}

/** Validates a parsed baseline document; throws BaselineError naming the first bad field. */
export function parseBaseline(document: unknown): Baseline {
  const result = BaselineSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = formatPath(issue.path);
    throw new BaselineError(`${field}: ${issue.message}`, field);
  }
  return result.data;
}

/** Parses and validates baseline JSON text; throws BaselineError for invalid JSON or a bad field. */
export function parseBaselineText(text: string): Baseline {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new BaselineError(`(root): not valid JSON: ${(error as Error).message}`, '(root)');
  }
  return parseBaseline(document);
}

export type RowValue = string | number;
export type Row = Readonly<Record<string, RowValue>>;

/** A finite number from a row value (numbers, numeric strings); undefined for missing or non-numeric values. */
export function numericValue(value: RowValue | undefined): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) ? value : undefined;
  }
  if (typeof value !== 'string' || value.trim().length === 0) {
    return undefined;
  }
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** A category label from a row value; undefined for missing values. */
export function categoryValue(value: RowValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === 'number' ? String(value) : value.trim();
  return text.length === 0 ? undefined : text;
}

/** Linear-interpolation quantile (R type 7 / numpy default) of an ascending array. */
function quantileSorted(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const low = Math.floor(h);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (h - low) * (sorted[high]! - sorted[low]!);
}

export interface BuildBaselineOptions {
  /** Number of quantile bins per numeric feature (default 10); ties can merge bins. */
  readonly bins?: number;
  /** Columns to treat as categorical even when every value is numeric (e.g. codes). */
  readonly categorical?: readonly string[];
  /** Columns to leave out of the baseline (identifiers, free text). */
  readonly ignore?: readonly string[];
}

/**
 * Builds a baseline from a training sample. A column whose non-missing values are all numeric is
 * numeric (quantile bin edges, proportions, a reference sample of up to 10 000 evenly spaced order
 * statistics); any other column is categorical (proportions). Columns without values are left out.
 */
export function buildBaseline(columns: readonly string[], rows: readonly Row[], options: BuildBaselineOptions = {}): Baseline {
  const bins = options.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 2) {
    throw new DriftInputError(`bins: must be a whole number ≥ 2; got ${bins}`);
  }
  const categorical = new Set(options.categorical ?? []);
  const ignore = new Set(options.ignore ?? []);
  const features: Baseline['features'] = {};
  for (const column of columns) {
    if (ignore.has(column)) continue;
    const present = rows.map((row) => row[column]).filter((value): value is RowValue => categoryValue(value) !== undefined);
    if (present.length === 0) continue;
    const numbers = present.map(numericValue);
    if (!categorical.has(column) && numbers.every((value) => value !== undefined)) {
      // -0 → 0, so the baseline survives a JSON round trip unchanged.
      const sorted = Float64Array.from(numbers as number[], (value) => value + 0).sort();
      const edges: number[] = [];
      for (let i = 1; i < bins; i += 1) {
        const edge = quantileSorted(sorted, i / bins);
        if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
      }
      const sample =
        sorted.length <= MAX_REFERENCE_SAMPLE
          ? Array.from(sorted)
          : Array.from({ length: MAX_REFERENCE_SAMPLE }, (_, i) => sorted[Math.floor(((i + 0.5) * sorted.length) / MAX_REFERENCE_SAMPLE)]!);
      features[column] = { type: 'numeric', binEdges: edges, binProportions: binProportions(Array.from(sorted), edges), sample };
    } else {
      const counts: Record<string, number> = {};
      for (const value of present) {
        const label = categoryValue(value)!;
        counts[label] = (counts[label] ?? 0) + 1;
      }
      const proportions: Record<string, number> = {};
      for (const [label, count] of Object.entries(counts)) proportions[label] = count / present.length;
      features[column] = { type: 'categorical', proportions };
    }
  }
  return parseBaseline({ version: 1, features, columns: [...columns] });
}

// ---------------------------------------------------------------------------------------------------
// SageMaker data capture
// ---------------------------------------------------------------------------------------------------

const CaptureLineSchema = z.object({
  captureData: z.object({
    endpointInput: z.object({
      observedContentType: z.optional(z.string()),
      mode: z.optional(z.string()),
      data: z.string(),
      encoding: z.enum(['CSV', 'JSON', 'BASE64']),
    }),
  }),
  eventMetadata: z.optional(z.object({ eventId: z.optional(z.string()), inferenceTime: z.optional(z.string()) })),
});

const DATA_FIELD = 'captureData.endpointInput.data';

function malformed(field: string, message: string): CaptureParseError {
  return new CaptureParseError(`${field}: ${message}`, field, 'malformed-capture');
}

/** Splits one CSV record into cells (RFC 4180 quotes). */
function splitCsvRecord(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i]!;
    if (quoted) {
      if (char === '"' && line[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        cell += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      cells.push(cell);
      cell = '';
    } else {
      cell += char;
    }
  }
  cells.push(cell);
  return cells;
}

function csvCell(cell: string): RowValue {
  const trimmed = cell.trim();
  const parsed = numericValue(trimmed);
  return parsed ?? trimmed;
}

function rowFromArray(values: readonly unknown[], columns: readonly string[], index: number): Record<string, RowValue> {
  if (values.length !== columns.length) {
    throw malformed(DATA_FIELD, `row ${index} has ${values.length} values; the baseline has ${columns.length} columns`);
  }
  const row: Record<string, RowValue> = {};
  values.forEach((value, position) => {
    const converted = scalar(value, `${DATA_FIELD}: row ${index}, column '${columns[position]}'`);
    if (converted !== undefined) row[columns[position]!] = converted;
  });
  return row;
}

function scalar(value: unknown, where: string): RowValue | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  throw new CaptureParseError(`${where}: must be a number, string, boolean or null; got ${Array.isArray(value) ? 'an array' : typeof value}`, DATA_FIELD, 'malformed-capture');
}

function rowFromObject(record: Record<string, unknown>, columnSet: ReadonlySet<string>, index: number): Record<string, RowValue> {
  const row: Record<string, RowValue> = {};
  for (const [key, value] of Object.entries(record)) {
    if (!columnSet.has(key)) {
      throw new CaptureParseError(`${DATA_FIELD}: unexpected field '${key}' not in baseline columns (row ${index})`, key, 'unexpected-field');
    }
    const converted = scalar(value, `${DATA_FIELD}: row ${index}, field '${key}'`);
    if (converted !== undefined) row[key] = converted;
  }
  return row;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rowsFromJson(document: unknown, columns: readonly string[]): Record<string, RowValue>[] {
  const columnSet = new Set(columns);
  let items: unknown[];
  if (isRecord(document) && Array.isArray(document.instances)) {
    items = document.instances;
  } else if (isRecord(document)) {
    items = [document];
  } else if (Array.isArray(document)) {
    // A single row of scalars, or an array of rows.
    items = document.every((item) => typeof item === 'object' && item !== null) ? document : [document];
  } else {
    throw malformed(DATA_FIELD, `JSON input must be an object, an array of rows or {"instances": [...]}; got ${typeof document}`);
  }
  return items.map((item, index) => {
    if (Array.isArray(item)) return rowFromArray(item, columns, index);
    if (isRecord(item)) return rowFromObject(item, columnSet, index);
    throw malformed(DATA_FIELD, `row ${index} must be an object or an array; got ${item === null ? 'null' : typeof item}`);
  });
}

function rowsFromCsv(text: string, columns: readonly string[]): Record<string, RowValue>[] {
  const records = text.split(/\r?\n/).filter((line) => line.trim().length > 0);
  return records.map((record, index) => rowFromArray(splitCsvRecord(record).map(csvCell), columns, index));
}

/**
 * Model-input rows of one SageMaker data-capture JSON line. CSV data gives one row per record (values
 * by position in `columns`); JSON data may be {"instances": [...]}, one flat object or an array of
 * rows (objects keyed by column or arrays by position); BASE64 data is decoded and read as JSON when
 * the observed content type mentions json, as CSV otherwise. Throws CaptureParseError naming the
 * field: 'malformed-capture' for structure problems, 'unexpected-field' for keys not in `columns`.
 */
export function parseCaptureLine(line: string, columns: readonly string[]): Record<string, RowValue>[] {
  let document: unknown;
  try {
    document = JSON.parse(line);
  } catch (error) {
    throw malformed('(line)', `not valid JSON: ${(error as Error).message}`);
  }
  const parsed = CaptureLineSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw malformed(formatPath(issue.path), issue.message);
  }
  const input = parsed.data.captureData.endpointInput;
  let data = input.data;
  let format: 'CSV' | 'JSON' = input.encoding === 'JSON' ? 'JSON' : 'CSV';
  if (input.encoding === 'BASE64') {
    if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(data)) {
      throw malformed(DATA_FIELD, 'is not valid base64');
    }
    data = Buffer.from(data, 'base64').toString('utf8');
    format = /json/i.test(input.observedContentType ?? '') ? 'JSON' : 'CSV';
  }
  if (format === 'CSV') {
    return rowsFromCsv(data, columns);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(data);
  } catch (error) {
    throw malformed(DATA_FIELD, `not valid JSON: ${(error as Error).message}`);
  }
  return rowsFromJson(payload, columns);
}

// ---------------------------------------------------------------------------------------------------
// Drift detection
// ---------------------------------------------------------------------------------------------------

export interface DetectDriftOptions {
  /** Fewer rows than this (overall, or valid values of a feature) → 'insufficient-data' (default 100). */
  readonly minRows?: number;
  /** PSI at or above this flags drift (default 0.2). */
  readonly psiThreshold?: number;
  /** KS / chi-square p-values below this flag drift (default 0.01). */
  readonly pValueThreshold?: number;
}

interface FeatureDriftBase {
  readonly feature: string;
  readonly type: 'numeric' | 'categorical';
  /** Rows with a usable value of this feature. */
  readonly rows: number;
  /** Rows whose value was missing or (numeric features) not a number. */
  readonly missing: number;
}

export interface FeatureDriftOk extends FeatureDriftBase {
  readonly status: 'ok';
  readonly psi: number;
  readonly ks?: { readonly statistic: number; readonly pValue: number };
  readonly chiSquare?: { readonly statistic: number; readonly degreesOfFreedom: number; readonly pValue: number };
  readonly drifted: boolean;
}

export interface FeatureDriftInsufficient extends FeatureDriftBase {
  readonly status: 'insufficient-data';
}

export type FeatureDrift = FeatureDriftOk | FeatureDriftInsufficient;

export interface DriftReport {
  /** 'insufficient-data' when fewer than minRows rows; else 'drift' when any feature drifted, 'no-drift' otherwise. */
  readonly status: 'insufficient-data' | 'drift' | 'no-drift';
  readonly rows: number;
  readonly minRows: number;
  readonly features: readonly FeatureDrift[];
  readonly driftedFeatures: readonly string[];
}

/** Compares rows with the baseline, feature by feature. Never reports a zero for data it did not have. */
export function detectDrift(baseline: Baseline, rows: readonly Row[], options: DetectDriftOptions = {}): DriftReport {
  const minRows = options.minRows ?? 100;
  const psiThreshold = options.psiThreshold ?? 0.2;
  const pValueThreshold = options.pValueThreshold ?? 0.01;
  if (!Number.isInteger(minRows) || minRows < 1) {
    throw new DriftInputError(`minRows: must be a whole number ≥ 1; got ${minRows}`);
  }
  if (rows.length < minRows) {
    return { status: 'insufficient-data', rows: rows.length, minRows, features: [], driftedFeatures: [] };
  }
  const features: FeatureDrift[] = [];
  for (const [feature, reference] of Object.entries(baseline.features)) {
    if (reference.type === 'numeric') {
      const values: number[] = [];
      for (const row of rows) {
        const value = numericValue(row[feature]);
        if (value !== undefined) values.push(value);
      }
      const missing = rows.length - values.length;
      if (values.length < minRows) {
        features.push({ feature, type: 'numeric', rows: values.length, missing, status: 'insufficient-data' });
        continue;
      }
      const psi = populationStabilityIndex(reference.binProportions, binProportions(values, reference.binEdges));
      const ks = ksTwoSample(reference.sample, values);
      features.push({
        feature,
        type: 'numeric',
        rows: values.length,
        missing,
        status: 'ok',
        psi,
        ks,
        drifted: psi >= psiThreshold || ks.pValue < pValueThreshold,
      });
    } else {
      const counts: Record<string, number> = {};
      let present = 0;
      for (const row of rows) {
        const label = categoryValue(row[feature]);
        if (label === undefined) continue;
        counts[label] = (counts[label] ?? 0) + 1;
        present += 1;
      }
      const missing = rows.length - present;
      if (present < minRows) {
        features.push({ feature, type: 'categorical', rows: present, missing, status: 'insufficient-data' });
        continue;
      }
      const psi = categoricalPsi(reference.proportions, counts);
      const { statistic, degreesOfFreedom, pValue } = chiSquareTest(reference.proportions, counts);
      features.push({
        feature,
        type: 'categorical',
        rows: present,
        missing,
        status: 'ok',
        psi,
        chiSquare: { statistic, degreesOfFreedom, pValue },
        drifted: psi >= psiThreshold || pValue < pValueThreshold,
      });
    }
  }
  const driftedFeatures = features.filter((f): f is FeatureDriftOk => f.status === 'ok' && f.drifted).map((f) => f.feature);
  return { status: driftedFeatures.length > 0 ? 'drift' : 'no-drift', rows: rows.length, minRows, features, driftedFeatures };
}
