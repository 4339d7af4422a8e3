// Data validation: checks a dataset (a training dataset under an S3 prefix, or a micro-batch of streamed
// records) against a declared constraints document, before anything trains on it.
//
// - The constraints document (ConstraintsSchema, versioned): per column its type (the feature types of
//   lib/features/feature-definition.ts, integral, fractional and string, plus boolean), whether it is
//   required, the largest fraction of missing values it may have, min/max (numbers) and the allowed
//   categories (strings); per dataset the least number of valid rows and the largest fraction of
//   quarantined rows; and a drift baseline (lambda/shared/drift.ts) with a PSI threshold.
// - `suggestConstraints` derives a document from a reference dataset.
// - `DataValidator` checks rows one at a time, in memory bounded by the number of columns and baseline
//   bins, never by the number of rows. A row with a value of the wrong type, out of range, of an unknown
//   category or missing where the column is required is QUARANTINED (`add` returns its problems, each
//   naming the column); the caller writes it somewhere with its reasons, never drops it. `finish` gives
//   the dataset-level violations (completeness, distribution, too few rows, too many quarantined rows, a
//   required column missing from a CSV header, an undeclared column) and per-column statistics. Its
//   state (`toState`, `DataValidator.fromState`) is plain JSON, so a validation can go on in another call.
// - CSV (with a header line, RFC 4180 via lambda/shared/features.ts parseCsvRows) and JSON Lines records.
//
// Which rows the statistics describe: completeness, distribution and the per-column statistics are over
// the VALID rows (what the constraints accept); quarantined rows are accounted for by the quarantine
// fraction and the per-column problem counts.
//
// Nothing here talks to AWS.
import * as z from './zod';
import type { FeatureType } from '../../lib/features/feature-definition';
import { BaselineSchema, binIndex, buildBaseline, categoricalPsi, formatPath, populationStabilityIndex, type Baseline, type Row } from './drift';
import { parseCsvRows } from './features';

// ---------------------------------------------------------------------------------------------------
// The constraints document
// ---------------------------------------------------------------------------------------------------

/** The constraints document format this module reads and writes (the document's `version`). */
export const CONSTRAINTS_FORMAT_VERSION = 1;

/** A column's type: Feature Store's feature types (lib/features/feature-definition.ts), plus boolean. */
export type ColumnType = FeatureType | 'boolean';

export const COLUMN_TYPES = ['integral', 'fractional', 'string', 'boolean'] as const satisfies readonly ColumnType[];

/** Default PSI above which a column's distribution is a violation (the drift detector's default too). */
export const DEFAULT_PSI_THRESHOLD = 0.2;

/** Default number of valid values a column needs before its PSI is computed. */
export const DEFAULT_DRIFT_MIN_ROWS = 100;

/** Undeclared column names a validation keeps track of (the rest are only counted). */
export const MAX_UNDECLARED_COLUMNS = 20;

/** Longest value quoted in a problem's message. */
const MAX_PREVIEW_CHARS = 60;

/** The constraints document is not valid. `field` is the path of the first problem (`columns[2].min`). */
export class ConstraintsError extends Error {
  override readonly name = 'ConstraintsError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

const finite = z.number({ error: 'must be a number' }).check(z.refine(Number.isFinite, { message: 'must be a finite number' }));
const fraction = finite.check(z.refine((value) => value >= 0 && value <= 1, { message: 'must be between 0 and 1' }));
const positive = finite.check(z.refine((value) => value > 0, { message: 'must be greater than 0' }));
const wholeNumber = (least: number) => z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(least, `must be at least ${least}`));

const ColumnConstraintSchema = z
  .strictObject({
    name: z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string')),
    type: z.enum(COLUMN_TYPES, { error: `must be one of ${COLUMN_TYPES.join(', ')}` }),
    description: z.optional(z.string({ error: 'must be a string' })),
    /** A row whose value is missing (absent, null, empty) is quarantined; a CSV header must name the column. */
    required: z.optional(z.boolean({ error: 'must be true or false' })),
    /** Largest fraction of valid rows in which the value may be missing. Default 1 (no limit). */
    maxMissingFraction: z.optional(fraction),
    /** Least value (inclusive), for integral and fractional columns. */
    min: z.optional(finite),
    /** Greatest value (inclusive), for integral and fractional columns. */
    max: z.optional(finite),
    /** The values a string column may take (compared after trimming). */
    categories: z.optional(z.array(z.string({ error: 'must be a string' })).check(z.minLength(1, 'needs at least one category'))),
    /** PSI above which this column's distribution is a violation. Default drift.psiThreshold. */
    psiThreshold: z.optional(positive),
  })
  .check(
    z.superRefine((column, context) => {
      const numeric = column.type === 'integral' || column.type === 'fractional';
      for (const bound of ['min', 'max'] as const) {
        if (column[bound] !== undefined && !numeric) {
          context.addIssue({ code: 'custom', path: [bound], message: `applies to integral and fractional columns only; '${column.name}' is ${column.type}` });
        }
      }
      if (column.min !== undefined && column.max !== undefined && column.min > column.max) {
        context.addIssue({ code: 'custom', path: ['max'], message: `must be at least min (${column.min}); got ${column.max}` });
      }
      if (column.categories !== undefined) {
        if (column.type !== 'string') {
          context.addIssue({ code: 'custom', path: ['categories'], message: `applies to string columns only; '${column.name}' is ${column.type}` });
        }
        column.categories.forEach((category, index) => {
          if (category.trim() !== category || category.length === 0) {
            context.addIssue({ code: 'custom', path: ['categories', index], message: `must be non-empty without leading or trailing spaces (values are trimmed); got ${JSON.stringify(category)}` });
          }
        });
      }
    }),
  );

export const ConstraintsSchema = z
  .strictObject({
    /** The document format: 1. */
    version: z.literal(CONSTRAINTS_FORMAT_VERSION, { error: `must be ${CONSTRAINTS_FORMAT_VERSION} (the constraints document format)` }),
    /** Free metadata: which dataset (version) the constraints were derived from or written for. */
    datasetVersion: z.optional(z.string({ error: 'must be a string' })),
    description: z.optional(z.string({ error: 'must be a string' })),
    columns: z.array(ColumnConstraintSchema).check(z.minLength(1, 'needs at least one column')),
    dataset: z.optional(
      z.strictObject({
        /** Least number of valid rows. Default 1. */
        minRows: z.optional(wholeNumber(0)),
        /** Largest fraction of rows that may be quarantined. Default 0: any quarantined row fails the validation. */
        maxQuarantinedFraction: z.optional(fraction),
        /** Whether columns the document does not declare may appear. Default true. */
        allowUndeclaredColumns: z.optional(z.boolean({ error: 'must be true or false' })),
      }),
    ),
    drift: z.optional(
      z.strictObject({
        /** A drift baseline (lambda/shared/drift.ts BaselineSchema), e.g. from `suggestConstraints` or `npm run drift-baseline`. */
        baseline: BaselineSchema,
        /** PSI above which a column's distribution is a violation. Default 0.2. */
        psiThreshold: z.optional(positive),
        /** Valid values a column needs before its PSI is computed (fewer: not judged). Default 100. */
        minRows: z.optional(wholeNumber(1)),
      }),
    ),
  })
  .check(
    z.superRefine((document, context) => {
      const types = new Map<string, ColumnType>();
      document.columns.forEach((column, index) => {
        if (types.has(column.name)) context.addIssue({ code: 'custom', path: ['columns', index, 'name'], message: `duplicate column '${column.name}'` });
        types.set(column.name, column.type);
      });
      for (const [feature, reference] of Object.entries(document.drift?.baseline.features ?? {})) {
        const type = types.get(feature);
        if (type === undefined) {
          context.addIssue({ code: 'custom', path: ['drift', 'baseline', 'features', feature], message: `'${feature}' is not one of the declared columns` });
        } else if (reference.type === 'numeric' && type !== 'integral' && type !== 'fractional') {
          context.addIssue({ code: 'custom', path: ['drift', 'baseline', 'features', feature], message: `a numeric baseline needs an integral or fractional column; '${feature}' is ${type}` });
        }
      }
    }),
  );

export type Constraints = z.infer<typeof ConstraintsSchema>;
export type ColumnConstraint = z.infer<typeof ColumnConstraintSchema>;

/** Validates a parsed constraints document; throws {@link ConstraintsError} naming the first bad field. */
export function parseConstraints(document: unknown): Constraints {
  const result = ConstraintsSchema.safeParse(document);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = formatPath(issue.path);
    const message = issue.code === 'unrecognized_keys' ? `${issue.keys.join(', ')}: unknown field` : issue.message;
    throw new ConstraintsError(`${field}: ${message}`, field);
  }
  return result.data;
}

/** Parses and validates constraints JSON text; throws {@link ConstraintsError}. */
export function parseConstraintsText(text: string): Constraints {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConstraintsError(`(root): not valid JSON: ${(error as Error).message}`, '(root)');
  }
  return parseConstraints(document);
}

// ---------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------

/** One row: column name -> value (CSV text, or a JSON value). */
export type DataRow = Readonly<Record<string, unknown>>;

/** A value read for a column's type. */
export type Cell =
  | { readonly state: 'missing' }
  /** `number` for integral and fractional columns; `label` the value as text (trimmed, booleans lower case). */
  | { readonly state: 'value'; readonly number?: number; readonly label: string }
  | { readonly state: 'wrong-type'; readonly message: string };

const MISSING: Cell = { state: 'missing' };
const INTEGRAL_TEXT = /^-?\d+$/;
const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;
const BOOLEAN_TEXT = /^(true|false)$/i;

function preview(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_PREVIEW_CHARS ? `${text.slice(0, MAX_PREVIEW_CHARS - 1)}…` : text;
}

/** Whether a value counts as missing: absent, null, or text that is empty once trimmed. */
export function isMissing(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim().length === 0);
}

/**
 * Reads a value as a column of `type` takes it. integral: a safe whole JSON number or text of a 64-bit
 * whole number (`-12`); fractional: a finite number or text of one; boolean: true/false, or the text
 * `true`/`false` in any case; string: any text, number or boolean (objects and arrays are the wrong type).
 * Text is trimmed; -0 reads as 0.
 */
export function readCell(type: ColumnType, value: unknown): Cell {
  if (isMissing(value)) return MISSING;
  const text = typeof value === 'string' ? value.trim() : undefined;
  switch (type) {
    case 'integral': {
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { state: 'value', number: value + 0, label: String(value + 0) };
      if (text !== undefined && INTEGRAL_TEXT.test(text)) {
        const big = BigInt(text);
        if (big >= MIN_INT64 && big <= MAX_INT64) {
          const number = Number(text) + 0;
          return { state: 'value', number, label: String(number) };
        }
      }
      return { state: 'wrong-type', message: `must be integral (a 64-bit whole number); got ${preview(value)}` };
    }
    case 'fractional': {
      const number = typeof value === 'number' ? value : text !== undefined ? Number(text) : Number.NaN;
      if (Number.isFinite(number)) return { state: 'value', number: number + 0, label: String(number + 0) };
      return { state: 'wrong-type', message: `must be fractional (a finite number); got ${preview(value)}` };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { state: 'value', label: String(value) };
      if (text !== undefined && BOOLEAN_TEXT.test(text)) return { state: 'value', label: text.toLowerCase() };
      return { state: 'wrong-type', message: `must be boolean (true or false); got ${preview(value)}` };
    }
    case 'string': {
      if (text !== undefined) return { state: 'value', label: text };
      if (typeof value === 'number' || typeof value === 'boolean') return { state: 'value', label: String(value) };
      return { state: 'wrong-type', message: `must be string (text, a number or a boolean); got ${preview(value)}` };
    }
  }
}

const own = (row: DataRow, column: string): unknown => (Object.prototype.hasOwnProperty.call(row, column) ? row[column] : undefined);

// ---------------------------------------------------------------------------------------------------
// Problems and violations
// ---------------------------------------------------------------------------------------------------

/** Why a row is quarantined, for one column. */
export type RowProblemKind = 'missing' | 'type' | 'range' | 'category';

export const ROW_PROBLEM_KINDS: readonly RowProblemKind[] = ['missing', 'type', 'range', 'category'];

export interface RowProblem {
  readonly kind: RowProblemKind;
  readonly column: string;
  readonly message: string;
}

/** A line that is no row at all (not JSON, wrong number of CSV fields, too long, not UTF-8): quarantined too. */
export interface MalformedLine {
  readonly kind: 'malformed';
  readonly message: string;
}

/** Why a line was quarantined. */
export type QuarantineReason = RowProblem | MalformedLine;

/** The dataset-level constraints a validation can violate. */
export type ConstraintKind = 'required-column' | 'undeclared-column' | 'completeness' | 'distribution' | 'min-rows' | 'quarantined-fraction';

/** One violated dataset-level constraint. */
export interface Violation {
  readonly constraint: ConstraintKind;
  /** The column it is about; null for the dataset's row counts. */
  readonly column: string | null;
  /** What the data showed: a count, a fraction or a PSI. */
  readonly observed: number;
  /** The bound it broke (a maximum, or for min-rows a minimum). */
  readonly expected: number;
  readonly message: string;
}

/** What the valid rows showed of one column. */
export interface ColumnStats {
  readonly column: string;
  readonly type: ColumnType;
  /** Valid rows with a value. */
  readonly present: number;
  /** Valid rows without one. */
  readonly missing: number;
  /** missing / valid rows; null without valid rows. */
  readonly missingFraction: number | null;
  /** Least, greatest and mean value (integral and fractional columns with values); null otherwise. */
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  /** PSI against the baseline; null without a baseline for the column or with fewer values than drift.minRows. */
  readonly psi: number | null;
  /** Problems of this column in quarantined rows, by kind (a row may have several). */
  readonly quarantined: Readonly<Record<RowProblemKind, number>>;
}

export interface ValidationOutcome {
  /** 'failed' when any constraint is violated. */
  readonly status: 'passed' | 'failed';
  /** Rows seen: valid + quarantined (malformed lines included). Blank lines are no rows. */
  readonly rows: number;
  readonly valid: number;
  readonly quarantined: number;
  /** Of the quarantined rows, lines that were no row at all. */
  readonly malformed: number;
  readonly violations: readonly Violation[];
  readonly columns: readonly ColumnStats[];
}

// ---------------------------------------------------------------------------------------------------
// The streaming validator
// ---------------------------------------------------------------------------------------------------

type DriftReference =
  | { readonly type: 'numeric'; readonly edges: readonly number[]; readonly proportions: readonly number[] }
  | { readonly type: 'categorical'; readonly labels: readonly string[]; readonly index: ReadonlyMap<string, number>; readonly proportions: Readonly<Record<string, number>> };

interface CompiledColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly numeric: boolean;
  readonly required: boolean;
  readonly maxMissingFraction: number;
  readonly min?: number;
  readonly max?: number;
  readonly categories?: ReadonlySet<string>;
  readonly categoryList?: string;
  readonly psiThreshold: number;
  readonly drift?: DriftReference;
}

/** Running totals of one column: the valid rows' values, the quarantined rows' problems, headers without it. */
interface ColumnTotals {
  present: number;
  missing: number;
  sum: number;
  min: number | null;
  max: number | null;
  /** missing, type, range, category. */
  problems: [number, number, number, number];
  /** CSV objects whose header does not name this (required) column. */
  headersWithout: number;
  /** Drift counts: per baseline bin (numeric), or per baseline category then one for the others (categorical). */
  drift: number[];
}

const count = z.number().check(z.int(), z.nonnegative());
const nullableFinite = z.nullable(finite);

const ValidatorStateSchema = z.strictObject({
  v: z.literal(1),
  rows: count,
  valid: count,
  quarantined: count,
  malformed: count,
  columns: z.array(
    z.strictObject({
      present: count,
      missing: count,
      sum: finite,
      min: nullableFinite,
      max: nullableFinite,
      problems: z.tuple([count, count, count, count]),
      headersWithout: count,
      drift: z.array(count),
    }),
  ),
  undeclared: z.array(z.tuple([z.string(), count])).check(z.maxLength(MAX_UNDECLARED_COLUMNS)),
  undeclaredOthers: count,
});

/** A validation's running state: plain JSON (see {@link DataValidator.toState}). */
export type ValidatorState = z.infer<typeof ValidatorStateSchema>;

/** A validator state that does not belong to these constraints (or is not one). */
export class ValidatorStateError extends Error {
  override readonly name = 'ValidatorStateError';
}

function compile(constraints: Constraints): CompiledColumn[] {
  const psiThreshold = constraints.drift?.psiThreshold ?? DEFAULT_PSI_THRESHOLD;
  const features = constraints.drift?.baseline.features ?? {};
  return constraints.columns.map((column): CompiledColumn => {
    const reference = Object.prototype.hasOwnProperty.call(features, column.name) ? features[column.name] : undefined;
    let drift: DriftReference | undefined;
    if (reference?.type === 'numeric') {
      drift = { type: 'numeric', edges: reference.binEdges, proportions: reference.binProportions };
    } else if (reference?.type === 'categorical') {
      const labels = Object.keys(reference.proportions);
      drift = { type: 'categorical', labels, index: new Map(labels.map((label, index) => [label, index])), proportions: reference.proportions };
    }
    const categories = column.categories === undefined ? undefined : new Set(column.categories);
    return {
      name: column.name,
      type: column.type,
      numeric: column.type === 'integral' || column.type === 'fractional',
      required: column.required === true,
      maxMissingFraction: column.maxMissingFraction ?? 1,
      ...(column.min === undefined ? {} : { min: column.min }),
      ...(column.max === undefined ? {} : { max: column.max }),
      ...(categories === undefined
        ? {}
        : { categories, categoryList: column.categories!.length <= 10 ? column.categories!.join(', ') : `${column.categories!.slice(0, 10).join(', ')}, … ${column.categories!.length - 10} more` }),
      psiThreshold: column.psiThreshold ?? psiThreshold,
      ...(drift === undefined ? {} : { drift }),
    };
  });
}

const driftSlots = (column: CompiledColumn): number => (column.drift === undefined ? 0 : column.drift.type === 'numeric' ? column.drift.edges.length + 1 : column.drift.labels.length + 1);

const emptyTotals = (column: CompiledColumn): ColumnTotals => ({
  present: 0,
  missing: 0,
  sum: 0,
  min: null,
  max: null,
  problems: [0, 0, 0, 0],
  headersWithout: 0,
  drift: new Array<number>(driftSlots(column)).fill(0),
});

const PROBLEM_INDEX: Record<RowProblemKind, number> = { missing: 0, type: 1, range: 2, category: 3 };

/**
 * Checks rows against constraints one at a time. Memory is bounded by the columns and baseline bins
 * (and MAX_UNDECLARED_COLUMNS names), whatever the number of rows.
 *
 *   const validator = new DataValidator(constraints);
 *   validator.addHeader(columns);                 // CSV: once per object
 *   const problems = validator.add(row);          // [] when valid; else quarantine the row with them
 *   validator.addMalformed();                     // a line that is no row
 *   const outcome = validator.finish();
 */
export class DataValidator {
  private readonly columns: readonly CompiledColumn[];
  private readonly declared: ReadonlyMap<string, number>;
  private readonly allowUndeclared: boolean;
  private rowCount = 0;
  private validCount = 0;
  private quarantinedCount = 0;
  private malformedCount = 0;
  private readonly totals: ColumnTotals[];
  private readonly undeclared = new Map<string, number>();
  private undeclaredOthers = 0;

  constructor(readonly constraints: Constraints) {
    this.columns = compile(constraints);
    this.declared = new Map(this.columns.map((column, index) => [column.name, index]));
    this.allowUndeclared = constraints.dataset?.allowUndeclaredColumns ?? true;
    this.totals = this.columns.map(emptyTotals);
  }

  /** A validator that goes on from `state` (from {@link toState} with the same constraints). Throws {@link ValidatorStateError}. */
  static fromState(constraints: Constraints, state: unknown): DataValidator {
    const parsed = ValidatorStateSchema.safeParse(state);
    if (!parsed.success) throw new ValidatorStateError(`not a validator state: ${formatPath(parsed.error.issues[0]!.path)}: ${parsed.error.issues[0]!.message}`);
    const validator = new DataValidator(constraints);
    const data = parsed.data;
    if (data.columns.length !== validator.columns.length) throw new ValidatorStateError(`the state has ${data.columns.length} columns; the constraints declare ${validator.columns.length}`);
    data.columns.forEach((column, index) => {
      const expected = driftSlots(validator.columns[index]!);
      if (column.drift.length !== expected) throw new ValidatorStateError(`column '${validator.columns[index]!.name}': the state has ${column.drift.length} drift counts; the baseline has ${expected}`);
      validator.totals[index] = { ...column, problems: [...column.problems], drift: [...column.drift] };
    });
    validator.rowCount = data.rows;
    validator.validCount = data.valid;
    validator.quarantinedCount = data.quarantined;
    validator.malformedCount = data.malformed;
    for (const [name, rows] of data.undeclared) validator.undeclared.set(name, rows);
    validator.undeclaredOthers = data.undeclaredOthers;
    return validator;
  }

  /** The running state, as plain JSON: `fromState(constraints, toState())` goes on exactly where this one is. */
  toState(): ValidatorState {
    return {
      v: 1,
      rows: this.rowCount,
      valid: this.validCount,
      quarantined: this.quarantinedCount,
      malformed: this.malformedCount,
      columns: this.totals.map((totals) => ({ ...totals, problems: [...totals.problems], drift: [...totals.drift] })),
      undeclared: [...this.undeclared.entries()],
      undeclaredOthers: this.undeclaredOthers,
    };
  }

  get rows(): number {
    return this.rowCount;
  }

  get valid(): number {
    return this.validCount;
  }

  get quarantined(): number {
    return this.quarantinedCount;
  }

  /** Why `row` would be quarantined, each problem naming its column; [] when the row is valid. Changes nothing. */
  rowProblems(row: DataRow): RowProblem[] {
    const problems: RowProblem[] = [];
    for (const column of this.columns) this.cellProblem(column, readCell(column.type, own(row, column.name)), problems);
    return problems;
  }

  /** Counts a CSV object's header: a required column it does not name is a violation (and every row of it misses the value). */
  addHeader(columns: readonly string[]): void {
    const named = new Set(columns);
    this.columns.forEach((column, index) => {
      if (column.required && !named.has(column.name)) this.totals[index]!.headersWithout += 1;
    });
  }

  /** Checks and counts one row. Returns its problems: [] when it is valid, else quarantine it with them. */
  add(row: DataRow): RowProblem[] {
    this.rowCount += 1;
    if (!this.allowUndeclared) this.countUndeclared(row);
    const cells = this.columns.map((column) => readCell(column.type, own(row, column.name)));
    const problems: RowProblem[] = [];
    this.columns.forEach((column, index) => this.cellProblem(column, cells[index]!, problems));
    if (problems.length > 0) {
      this.quarantinedCount += 1;
      for (const problem of problems) this.totals[this.declared.get(problem.column)!]!.problems[PROBLEM_INDEX[problem.kind]] += 1;
      return problems;
    }
    this.validCount += 1;
    this.columns.forEach((column, index) => this.tally(column, this.totals[index]!, cells[index]!));
    return problems;
  }

  /** Counts a line that is no row (it is quarantined as malformed). */
  addMalformed(): void {
    this.rowCount += 1;
    this.quarantinedCount += 1;
    this.malformedCount += 1;
  }

  /** The dataset-level violations and per-column statistics of everything added so far. */
  finish(): ValidationOutcome {
    const violations: Violation[] = [];
    const dataset = this.constraints.dataset ?? {};
    const driftMinRows = this.constraints.drift?.minRows ?? DEFAULT_DRIFT_MIN_ROWS;
    this.columns.forEach((column, index) => {
      const totals = this.totals[index]!;
      if (totals.headersWithout > 0) {
        violations.push({
          constraint: 'required-column',
          column: column.name,
          observed: totals.headersWithout,
          expected: 0,
          message: `required column '${column.name}' is missing from the header of ${plural(totals.headersWithout, 'CSV object')}`,
        });
      }
    });
    for (const [name, rows] of this.undeclared) {
      violations.push({ constraint: 'undeclared-column', column: name, observed: rows, expected: 0, message: `column '${name}' is not declared (in ${plural(rows, 'row')}) and dataset.allowUndeclaredColumns is false` });
    }
    if (this.undeclaredOthers > 0) {
      violations.push({
        constraint: 'undeclared-column',
        column: null,
        observed: this.undeclaredOthers,
        expected: 0,
        message: `${plural(this.undeclaredOthers, 'more undeclared column')} (only the first ${MAX_UNDECLARED_COLUMNS} are named)`,
      });
    }
    const stats = this.columns.map((column, index) => this.columnStats(column, this.totals[index]!, driftMinRows));
    stats.forEach((stat, index) => {
      const column = this.columns[index]!;
      if (stat.missingFraction !== null && stat.missingFraction > column.maxMissingFraction) {
        violations.push({
          constraint: 'completeness',
          column: column.name,
          observed: stat.missingFraction,
          expected: column.maxMissingFraction,
          message: `'${column.name}' is missing in ${percent(stat.missingFraction)} of the valid rows (${stat.missing} of ${this.validCount}); at most ${percent(column.maxMissingFraction)} may be`,
        });
      }
    });
    stats.forEach((stat, index) => {
      const column = this.columns[index]!;
      if (stat.psi !== null && stat.psi > column.psiThreshold) {
        violations.push({
          constraint: 'distribution',
          column: column.name,
          observed: stat.psi,
          expected: column.psiThreshold,
          message: `'${column.name}' has drifted from the baseline: PSI ${stat.psi.toFixed(3)} is above ${column.psiThreshold}`,
        });
      }
    });
    const minRows = dataset.minRows ?? 1;
    if (this.validCount < minRows) {
      violations.push({ constraint: 'min-rows', column: null, observed: this.validCount, expected: minRows, message: `${plural(this.validCount, 'valid row')}; at least ${minRows} required` });
    }
    const maxQuarantined = dataset.maxQuarantinedFraction ?? 0;
    const quarantinedFraction = this.rowCount === 0 ? 0 : this.quarantinedCount / this.rowCount;
    if (quarantinedFraction > maxQuarantined) {
      violations.push({
        constraint: 'quarantined-fraction',
        column: null,
        observed: quarantinedFraction,
        expected: maxQuarantined,
        message: `${this.quarantinedCount} of ${this.rowCount} rows (${percent(quarantinedFraction)}) were quarantined${this.quarantineSummary()}; at most ${percent(maxQuarantined)} may be`,
      });
    }
    return {
      status: violations.length > 0 ? 'failed' : 'passed',
      rows: this.rowCount,
      valid: this.validCount,
      quarantined: this.quarantinedCount,
      malformed: this.malformedCount,
      violations,
      columns: stats,
    };
  }

  private cellProblem(column: CompiledColumn, cell: Cell, problems: RowProblem[]): void {
    if (cell.state === 'missing') {
      if (column.required) problems.push({ kind: 'missing', column: column.name, message: 'is required; the value is missing' });
      return;
    }
    if (cell.state === 'wrong-type') {
      problems.push({ kind: 'type', column: column.name, message: cell.message });
      return;
    }
    if (cell.number !== undefined) {
      if (column.min !== undefined && cell.number < column.min) problems.push({ kind: 'range', column: column.name, message: `is below the minimum ${column.min}; got ${cell.number}` });
      else if (column.max !== undefined && cell.number > column.max) problems.push({ kind: 'range', column: column.name, message: `is above the maximum ${column.max}; got ${cell.number}` });
    }
    if (column.categories !== undefined && !column.categories.has(cell.label)) {
      problems.push({ kind: 'category', column: column.name, message: `is not an allowed category (${column.categoryList}); got ${preview(cell.label)}` });
    }
  }

  private tally(column: CompiledColumn, totals: ColumnTotals, cell: Cell): void {
    if (cell.state !== 'value') {
      totals.missing += 1;
      return;
    }
    totals.present += 1;
    if (cell.number !== undefined) {
      totals.sum += cell.number;
      totals.min = totals.min === null ? cell.number : Math.min(totals.min, cell.number);
      totals.max = totals.max === null ? cell.number : Math.max(totals.max, cell.number);
    }
    const drift = column.drift;
    if (drift?.type === 'numeric' && cell.number !== undefined) {
      totals.drift[binIndex(cell.number, drift.edges)]! += 1;
    } else if (drift?.type === 'categorical') {
      totals.drift[drift.index.get(cell.label) ?? drift.labels.length]! += 1;
    }
  }

  private countUndeclared(row: DataRow): void {
    for (const key of Object.keys(row)) {
      if (this.declared.has(key)) continue;
      const seen = this.undeclared.get(key);
      if (seen !== undefined) this.undeclared.set(key, seen + 1);
      else if (this.undeclared.size < MAX_UNDECLARED_COLUMNS) this.undeclared.set(key, 1);
      else this.undeclaredOthers += 1;
    }
  }

  private columnStats(column: CompiledColumn, totals: ColumnTotals, driftMinRows: number): ColumnStats {
    let psi: number | null = null;
    const drift = column.drift;
    if (drift !== undefined && totals.present >= driftMinRows) {
      // Values the baseline never saw (categorical): its own bucket, which categoricalPsi pools as '__other__'.
      psi =
        drift.type === 'numeric'
          ? populationStabilityIndex(drift.proportions, totals.drift)
          : categoricalPsi(drift.proportions, categoricalCounts(drift.labels, totals.drift));
    }
    const valid = totals.present + totals.missing;
    return {
      column: column.name,
      type: column.type,
      present: totals.present,
      missing: totals.missing,
      missingFraction: valid === 0 ? null : totals.missing / valid,
      min: column.numeric ? totals.min : null,
      max: column.numeric ? totals.max : null,
      mean: column.numeric && totals.present > 0 ? totals.sum / totals.present : null,
      psi,
      quarantined: { missing: totals.problems[0], type: totals.problems[1], range: totals.problems[2], category: totals.problems[3] },
    };
  }

  /** ` (most often: 'tenure' range 12, ...)`: the three commonest problems of the quarantined rows. */
  private quarantineSummary(): string {
    const counts: Array<[string, number]> = [];
    this.columns.forEach((column, index) => {
      ROW_PROBLEM_KINDS.forEach((kind) => {
        const n = this.totals[index]!.problems[PROBLEM_INDEX[kind]];
        if (n > 0) counts.push([`'${column.name}' ${kind} ${n}`, n]);
      });
    });
    if (this.malformedCount > 0) counts.push([`malformed ${this.malformedCount}`, this.malformedCount]);
    if (counts.length === 0) return '';
    counts.sort((a, b) => b[1] - a[1]);
    return ` (${counts
      .slice(0, 3)
      .map(([label]) => label)
      .join(', ')})`;
  }
}

/** Observed counts keyed by the baseline's labels, values it never saw under a key no baseline label can take. */
function categoricalCounts(labels: readonly string[], counts: readonly number[]): Record<string, number> {
  const observed: Record<string, number> = {};
  labels.forEach((label, index) => {
    observed[label] = counts[index]!;
  });
  const others = counts[labels.length]!;
  // categoricalPsi pools every key it does not know into '__other__'; '\u0000' is no trimmed label.
  if (others > 0) observed['\u0000unseen'] = others;
  return observed;
}

const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;
const percent = (value: number): string => `${Number((value * 100).toPrecision(3))}%`;

// ---------------------------------------------------------------------------------------------------
// Suggesting constraints from a reference dataset
// ---------------------------------------------------------------------------------------------------

export interface SuggestOptions {
  /** Widen each observed numeric range by this fraction of its width on both sides (a range observed non-negative stays so). Default 0. */
  readonly margin?: number;
  /** Added to each column's observed missing fraction for maxMissingFraction. Default 0.01. */
  readonly completenessSlack?: number;
  /** A string column with at most this many distinct values, and at most half as many as it has values, gets them as its categories (and a drift baseline). Default 50. */
  readonly maxCategories?: number;
  /** Types to use instead of inferring them. */
  readonly types?: Readonly<Record<string, ColumnType>>;
  /** The required columns. Default: every column with a value in every reference row. */
  readonly required?: readonly string[];
  /** Columns to leave out of the document (they are then undeclared). */
  readonly ignore?: readonly string[];
  /** dataset.minRows. Default: not set (1). */
  readonly minRows?: number;
  /** dataset.maxQuarantinedFraction. Default 0. */
  readonly maxQuarantinedFraction?: number;
  /** Whether to add a drift baseline. Default true. */
  readonly drift?: boolean;
  /** Quantile bins per numeric column of the baseline. Default 10. */
  readonly bins?: number;
  /** drift.psiThreshold. Default 0.2. */
  readonly psiThreshold?: number;
  /** drift.minRows. Default 100. */
  readonly driftMinRows?: number;
  readonly datasetVersion?: string;
  readonly description?: string;
}

/** The narrowest type every present value of a column reads as: boolean, integral, fractional, else string; undefined when values are objects or arrays. */
function inferType(values: readonly unknown[]): ColumnType | undefined {
  if (values.length === 0) return 'string';
  for (const type of ['boolean', 'integral', 'fractional', 'string'] as const) {
    if (values.every((value) => readCell(type, value).state === 'value')) return type;
  }
  return undefined;
}

/**
 * Rounds a widened bound outward to 6 significant digits of the column's scale (12.559999999999999 ->
 * 12.56), so a suggested document reads as a person would write it.
 */
function outward(value: number, direction: 'down' | 'up', scale: number): number {
  if (!(scale > 0)) return value;
  const exponent = 5 - Math.floor(Math.log10(scale));
  // Scaled by a power of ten and cleaned of the last digits' noise before the floor or ceiling.
  const scaled = Number((Number(value.toPrecision(12)) * 10 ** exponent).toPrecision(12));
  const whole = direction === 'down' ? Math.floor(scaled) : Math.ceil(scaled);
  // The caller keeps the observed values inside the bounds, whatever the rounding did.
  const rounded = exponent >= 0 ? whole / 10 ** exponent : whole * 10 ** -exponent;
  // Near the ends of the doubles' range (a scale of 5e-324 needs 10^329) the powers overflow: keep the value.
  return Number.isFinite(rounded) ? rounded : value;
}

/** Rounds a fraction up to 4 decimals, never below it. */
function roundUp(value: number): number {
  const rounded = Math.ceil(value * 10_000) / 10_000;
  return rounded >= value ? rounded : value;
}

/**
 * Derives constraints from a reference dataset: per column the inferred type (or `options.types`),
 * required when complete (or `options.required`), maxMissingFraction = observed + slack, min/max =
 * observed range widened by `margin` (rounded outward: to whole numbers for integral columns, to 6
 * significant digits otherwise), the categories of a string column with few distinct values, and a drift baseline (drift.ts buildBaseline) of the numeric,
 * boolean and categorised string columns. A column holding objects or arrays is left out. The rows of
 * the reference dataset validate against the result, so any later dataset like it does too.
 */
export function suggestConstraints(columns: readonly string[], rows: readonly DataRow[], options: SuggestOptions = {}): Constraints {
  const margin = options.margin ?? 0;
  const slack = options.completenessSlack ?? 0.01;
  const maxCategories = options.maxCategories ?? 50;
  for (const [name, value] of Object.entries({ margin, completenessSlack: slack })) {
    if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name}: must be a finite number ≥ 0; got ${value}`);
  }
  if (!(Number.isInteger(maxCategories) && maxCategories >= 0)) throw new RangeError(`maxCategories: must be a whole number ≥ 0; got ${maxCategories}`);
  if (new Set(columns).size !== columns.length) throw new RangeError(`columns: names a column twice (${columns.join(', ')})`);
  const ignore = new Set(options.ignore ?? []);
  const required = options.required === undefined ? undefined : new Set(options.required);
  const declared: ColumnConstraint[] = [];
  const baselineRows: Array<Record<string, string | number>> = rows.map(() => ({}));
  const categorical: string[] = [];
  const withBaseline: string[] = [];
  for (const name of columns) {
    if (ignore.has(name)) continue;
    const values = rows.map((row) => own(row, name));
    const present = values.filter((value) => !isMissing(value));
    const type = options.types?.[name] ?? inferType(present);
    if (type === undefined) continue;
    const missingFraction = rows.length === 0 ? 0 : (rows.length - present.length) / rows.length;
    const isRequired = required === undefined ? present.length > 0 && present.length === rows.length : required.has(name);
    const cells = values.map((value) => readCell(type, value));
    const column: { -readonly [K in keyof ColumnConstraint]: ColumnConstraint[K] } = { name, type };
    if (isRequired) column.required = true;
    else if (missingFraction + slack < 1) column.maxMissingFraction = Math.min(1, roundUp(missingFraction + slack));
    if (type === 'integral' || type === 'fractional') {
      const numbers = cells.flatMap((cell) => (cell.state === 'value' && cell.number !== undefined ? [cell.number] : []));
      if (numbers.length > 0) {
        const low = numbers.reduce((a, b) => Math.min(a, b));
        const high = numbers.reduce((a, b) => Math.max(a, b));
        const widen = margin * (high - low);
        let min = low - widen;
        let max = high + widen;
        if (low >= 0) min = Math.max(0, min);
        if (type === 'integral') {
          min = Math.floor(min);
          max = Math.ceil(max);
        } else if (widen > 0) {
          const scale = Math.max(Math.abs(min), Math.abs(max));
          min = outward(min, 'down', scale);
          max = outward(max, 'up', scale);
          if (low >= 0) min = Math.max(0, min);
        }
        // Widening can only loosen: never let rounding cut off an observed value.
        column.min = Math.min(min, low) + 0;
        column.max = Math.max(max, high) + 0;
      }
    }
    const labels = cells.flatMap((cell) => (cell.state === 'value' ? [cell.label] : []));
    if (type === 'string') {
      const distinct = [...new Set(labels)].sort();
      // A column of mostly different values (identifiers, free text) has no categories.
      if (distinct.length > 0 && distinct.length <= maxCategories && distinct.length * 2 <= labels.length) {
        column.categories = distinct;
        categorical.push(name);
        withBaseline.push(name);
      }
    } else if (labels.length > 0) {
      if (type === 'boolean') categorical.push(name);
      withBaseline.push(name);
    }
    cells.forEach((cell, index) => {
      if (cell.state === 'value') baselineRows[index]![name] = cell.number ?? cell.label;
    });
    declared.push(column);
  }
  if (declared.length === 0) throw new RangeError('columns: no column to constrain (every column is ignored or holds objects or arrays)');
  const dataset: NonNullable<Constraints['dataset']> = {
    ...(options.minRows === undefined ? {} : { minRows: options.minRows }),
    maxQuarantinedFraction: options.maxQuarantinedFraction ?? 0,
  };
  let drift: Constraints['drift'];
  if ((options.drift ?? true) && withBaseline.length > 0) {
    const names = declared.map((column) => column.name);
    const withBaselineSet = new Set(withBaseline);
    const baseline: Baseline = buildBaseline(names, baselineRows as Row[], {
      ...(options.bins === undefined ? {} : { bins: options.bins }),
      categorical,
      ignore: names.filter((name) => !withBaselineSet.has(name)),
    });
    drift = {
      baseline,
      psiThreshold: options.psiThreshold ?? DEFAULT_PSI_THRESHOLD,
      minRows: options.driftMinRows ?? DEFAULT_DRIFT_MIN_ROWS,
    };
  }
  // Checked with the schema the validator reads it with.
  return parseConstraints({
    version: CONSTRAINTS_FORMAT_VERSION,
    ...(options.datasetVersion === undefined ? {} : { datasetVersion: options.datasetVersion }),
    ...(options.description === undefined ? {} : { description: options.description }),
    columns: declared,
    dataset,
    ...(drift === undefined ? {} : { drift }),
  });
}

// ---------------------------------------------------------------------------------------------------
// CSV and JSON Lines
// ---------------------------------------------------------------------------------------------------

export const DATA_FORMATS = ['csv', 'jsonl'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

/** One record of a dataset file: the row, or why the line is no row. */
export interface DataLine {
  /** 1-based line of the file where the record starts (a CSV header is line 1). */
  readonly line: number;
  /** The record's text (without its line break). */
  readonly text: string;
  readonly row?: DataRow;
  readonly malformed?: string;
}

/** A CSV header: its column names, or why it is unusable (then every row of the object is malformed). */
export type CsvHeader = { readonly columns: readonly string[] } | { readonly problem: string };

const UNTERMINATED = 'has an unterminated quoted field';

/** Reads a CSV header line (names trimmed; each must be non-empty and unique). */
export function parseCsvHeader(text: string, line = 1): CsvHeader {
  const rows = parseCsvRows(text);
  const header = rows[0];
  if (header === undefined) return { problem: `the CSV header (line ${line}) is empty` };
  if (header.error !== undefined) return { problem: `the CSV header (line ${line}) ${header.error}` };
  const columns = header.fields.map((field) => field.trim());
  const seen = new Set<string>();
  for (const [index, name] of columns.entries()) {
    if (name.length === 0) return { problem: `the CSV header (line ${line}) names no column ${index + 1}` };
    if (seen.has(name)) return { problem: `the CSV header (line ${line}) names column '${name}' twice` };
    seen.add(name);
  }
  return { columns };
}

/** Whether a CSV record's text ends inside a quoted field, so that the record goes on on the next line. */
export function csvRecordIsOpen(text: string): boolean {
  return parseCsvRows(text)[0]?.error === UNTERMINATED;
}

/** One CSV record (its text may span lines inside quotes) against the object's header. */
export function parseCsvRecord(text: string, header: CsvHeader, line: number): DataLine {
  if ('problem' in header) return { line, text, malformed: `${header.problem}, so line ${line} cannot be read` };
  const rows = parseCsvRows(text);
  const row = rows[0];
  if (row === undefined) return { line, text, malformed: `line ${line} is blank` };
  if (row.error !== undefined || rows.length > 1) return { line, text, malformed: `line ${line} ${row.error ?? 'holds more than one record'}` };
  if (row.fields.length !== header.columns.length) return { line, text, malformed: `line ${line} has ${plural(row.fields.length, 'field')}; the header has ${header.columns.length}` };
  return { line, text, row: Object.fromEntries(header.columns.map((name, index) => [name, row.fields[index]])) };
}

/** One JSON Lines record: a JSON object of column -> value. */
export function parseJsonRecord(text: string, line: number): DataLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { line, text, malformed: `line ${line} is not valid JSON` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { line, text, malformed: `line ${line} is not a JSON object (got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json})` };
  }
  return { line, text, row: json as DataRow };
}

/** A whole dataset file held in memory (a reference sample, a micro-batch): its columns and records. Blank lines hold no record. */
export function parseDataset(format: DataFormat, input: string): { readonly columns: readonly string[]; readonly header?: CsvHeader; readonly lines: readonly DataLine[] } {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  if (format === 'csv') {
    const rows = parseCsvRows(text);
    const first = rows[0];
    if (first === undefined) return { columns: [], lines: [] };
    const header = parseCsvHeader(first.text, first.line);
    const lines = rows.slice(1).map((row) => parseCsvRecord(row.text, header, row.line));
    return { columns: 'columns' in header ? header.columns : [], header, lines };
  }
  const lines: DataLine[] = [];
  const columns = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const lineText = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (lineText.trim().length === 0) return;
    const line = parseJsonRecord(lineText, index + 1);
    if (line.row !== undefined) for (const key of Object.keys(line.row)) columns.add(key);
    lines.push(line);
  });
  return { columns: [...columns], lines };
}

// ---------------------------------------------------------------------------------------------------
// Quarantine
// ---------------------------------------------------------------------------------------------------

/** One quarantined line as written to the quarantine location (one JSON object per line). */
export interface QuarantinedLine {
  /** The object key it came from (or the caller's name for a micro-batch). */
  readonly object: string;
  readonly line: number;
  readonly reasons: readonly QuarantineReason[];
  /** The record's text as it was read. */
  readonly text: string;
}

/** The JSON Lines line (with its newline) of a quarantined record. */
export function quarantineLine(line: QuarantinedLine): string {
  return `${JSON.stringify({ object: line.object, line: line.line, reasons: line.reasons, text: line.text })}\n`;
}
