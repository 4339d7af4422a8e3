import fc from 'fast-check';
import {
  COLUMN_TYPES,
  ConstraintsError,
  csvRecordIsOpen,
  DataValidator,
  parseConstraints,
  parseConstraintsText,
  parseCsvHeader,
  parseCsvRecord,
  parseDataset,
  parseJsonRecord,
  quarantineLine,
  readCell,
  suggestConstraints,
  ValidatorStateError,
  type ColumnType,
  type Constraints,
  type DataRow,
} from '../../../lambda/shared/data-validation';
import {
  buildReport,
  DataValidationInputError,
  decodeContinuation,
  decodeProgress,
  encodeContinuation,
  encodeProgress,
  isDatasetObject,
  parseValidateInput,
  quarantinePartKey,
  stateKey,
  withQuarantineSample,
  type RunProgress,
} from '../../../lambda/shared/data-validation-run';
import { buildBaseline } from '../../../lambda/shared/drift';
import type { FeatureType } from '../../../lib/features/feature-definition';

/** The document of the README-style example: every kind of constraint once. */
const CONSTRAINTS: Constraints = {
  version: 1,
  datasetVersion: 'churn-2026-11',
  description: 'churn training data',
  columns: [
    { name: 'customer_id', type: 'string', required: true },
    { name: 'tenure', type: 'integral', required: true, min: 0, max: 120 },
    { name: 'charges', type: 'fractional', maxMissingFraction: 0.1, min: 0, max: 500 },
    { name: 'plan', type: 'string', categories: ['annual', 'monthly'] },
    { name: 'churned', type: 'boolean' },
  ],
  dataset: { minRows: 2, maxQuarantinedFraction: 0.25 },
};

const row = (values: Partial<Record<'customer_id' | 'tenure' | 'charges' | 'plan' | 'churned', unknown>> = {}): DataRow => ({
  customer_id: 'c-1',
  tenure: '12',
  charges: '50.5',
  plan: 'annual',
  churned: 'false',
  ...values,
});

describe('the constraints document', () => {
  test('accepts a document with every kind of constraint, and a drift baseline over its columns', () => {
    const baseline = buildBaseline(['tenure', 'plan'], [{ tenure: 1, plan: 'annual' }, { tenure: 5, plan: 'monthly' }], { categorical: ['plan'] });
    expect(parseConstraints({ ...CONSTRAINTS, drift: { baseline, psiThreshold: 0.1, minRows: 10 } })).toMatchObject({ version: 1, drift: { psiThreshold: 0.1 } });
  });

  test('the column types are the feature types of a feature group, plus boolean', () => {
    const featureTypes: FeatureType[] = ['integral', 'fractional', 'string'];
    expect([...COLUMN_TYPES].sort()).toEqual([...featureTypes, 'boolean'].sort());
  });

  test.each([
    [{ ...CONSTRAINTS, version: 2 }, 'version', 'version: must be 1 (the constraints document format)'],
    [{ ...CONSTRAINTS, columns: [] }, 'columns', 'columns: needs at least one column'],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'text' }] }, 'columns[0].type', 'columns[0].type: must be one of integral, fractional, string, boolean'],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'string', min: 1 }] }, 'columns[0].min', "columns[0].min: applies to integral and fractional columns only; 'a' is string"],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'integral', min: 5, max: 1 }] }, 'columns[0].max', 'columns[0].max: must be at least min (5); got 1'],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'boolean', categories: ['x'] }] }, 'columns[0].categories', "columns[0].categories: applies to string columns only; 'a' is boolean"],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'string', categories: [' x'] }] }, 'columns[0].categories[0]', 'columns[0].categories[0]: must be non-empty without leading or trailing spaces (values are trimmed); got " x"'],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'string' }, { name: 'a', type: 'integral' }] }, 'columns[1].name', "columns[1].name: duplicate column 'a'"],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'string', maxMissingFraction: 1.5 }] }, 'columns[0].maxMissingFraction', 'columns[0].maxMissingFraction: must be between 0 and 1'],
    [{ ...CONSTRAINTS, columns: [{ name: 'a', type: 'string', maxMissing: 0.5 }] }, 'columns[0]', 'columns[0]: maxMissing: unknown field'],
    [{ ...CONSTRAINTS, dataset: { minRows: 1.5 } }, 'dataset.minRows', 'dataset.minRows: must be a whole number'],
  ])('refuses %j, naming %s', (document, field, message) => {
    let error: unknown;
    try {
      parseConstraints(document);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConstraintsError);
    expect(error).toMatchObject({ field, message });
  });

  test('refuses a baseline feature that is not a declared column, or numeric over a string column', () => {
    const baseline = buildBaseline(['x', 'plan'], [{ x: 1, plan: 2 }, { x: 2, plan: 3 }]);
    expect(() => parseConstraints({ ...CONSTRAINTS, drift: { baseline } })).toThrow("drift.baseline.features.x: 'x' is not one of the declared columns");
    expect(() => parseConstraints({ ...CONSTRAINTS, columns: [...CONSTRAINTS.columns, { name: 'x', type: 'integral' }], drift: { baseline } })).toThrow(
      "drift.baseline.features.plan: a numeric baseline needs an integral or fractional column; 'plan' is string",
    );
  });

  test('names invalid JSON', () => {
    expect(() => parseConstraintsText('{')).toThrow(/^\(root\): not valid JSON/);
  });
});

describe('readCell', () => {
  test.each<[ColumnType, unknown, ReturnType<typeof readCell>]>([
    ['integral', '  42 ', { state: 'value', number: 42, label: '42' }],
    ['integral', -7, { state: 'value', number: -7, label: '-7' }],
    ['integral', '-0', { state: 'value', number: 0, label: '0' }],
    ['integral', '3.5', { state: 'wrong-type', message: 'must be integral (a 64-bit whole number); got "3.5"' }],
    ['integral', 2 ** 60, { state: 'wrong-type', message: 'must be integral (a 64-bit whole number); got 1152921504606847000' }],
    ['integral', '99999999999999999999', { state: 'wrong-type', message: 'must be integral (a 64-bit whole number); got "99999999999999999999"' }],
    ['fractional', '1e3', { state: 'value', number: 1000, label: '1000' }],
    ['fractional', true, { state: 'wrong-type', message: 'must be fractional (a finite number); got true' }],
    ['fractional', 'Infinity', { state: 'wrong-type', message: 'must be fractional (a finite number); got "Infinity"' }],
    ['boolean', 'TRUE', { state: 'value', label: 'true' }],
    ['boolean', false, { state: 'value', label: 'false' }],
    ['boolean', '1', { state: 'wrong-type', message: 'must be boolean (true or false); got "1"' }],
    ['string', ' annual ', { state: 'value', label: 'annual' }],
    ['string', 3, { state: 'value', label: '3' }],
    ['string', { a: 1 }, { state: 'wrong-type', message: 'must be string (text, a number or a boolean); got an object' }],
    ['string', [1], { state: 'wrong-type', message: 'must be string (text, a number or a boolean); got an array' }],
    ['string', '   ', { state: 'missing' }],
    ['integral', null, { state: 'missing' }],
    ['fractional', undefined, { state: 'missing' }],
  ])('reads %s %j', (type, value, cell) => {
    expect(readCell(type, value)).toEqual(cell);
  });
});

describe('DataValidator', () => {
  test('quarantines a row with each kind of problem, every problem naming its column', () => {
    const validator = new DataValidator(parseConstraints(CONSTRAINTS));
    expect(validator.add(row())).toEqual([]);
    expect(validator.add(row({ customer_id: '', tenure: '-1', charges: 'lots', plan: 'weekly', churned: 'maybe' }))).toEqual([
      { kind: 'missing', column: 'customer_id', message: 'is required; the value is missing' },
      { kind: 'range', column: 'tenure', message: 'is below the minimum 0; got -1' },
      { kind: 'type', column: 'charges', message: 'must be fractional (a finite number); got "lots"' },
      { kind: 'category', column: 'plan', message: 'is not an allowed category (annual, monthly); got "weekly"' },
      { kind: 'type', column: 'churned', message: 'must be boolean (true or false); got "maybe"' },
    ]);
    expect(validator.add(row({ tenure: 121 }))).toEqual([{ kind: 'range', column: 'tenure', message: 'is above the maximum 120; got 121' }]);
    expect(validator.add(row({ charges: '', plan: undefined, churned: null }))).toEqual([]);
    expect([validator.rows, validator.valid, validator.quarantined]).toEqual([4, 2, 2]);
  });

  test('rowProblems says what add would, and counts nothing', () => {
    const validator = new DataValidator(parseConstraints(CONSTRAINTS));
    expect(validator.rowProblems(row({ tenure: 'x' }))).toEqual([{ kind: 'type', column: 'tenure', message: 'must be integral (a 64-bit whole number); got "x"' }]);
    expect(validator.rows).toBe(0);
  });

  test('reads only own properties of a row', () => {
    const validator = new DataValidator(parseConstraints({ version: 1, columns: [{ name: 'constructor', type: 'string', required: true }] }));
    expect(validator.rowProblems({})).toEqual([{ kind: 'missing', column: 'constructor', message: 'is required; the value is missing' }]);
  });

  test('passes a good dataset with per-column statistics over the valid rows', () => {
    const validator = new DataValidator(parseConstraints(CONSTRAINTS));
    validator.add(row({ tenure: 10, charges: 20 }));
    validator.add(row({ tenure: 30, charges: '40', plan: 'monthly', churned: true }));
    validator.add(row({ tenure: 'bad' }));
    validator.addMalformed();
    const outcome = validator.finish();
    expect(outcome).toMatchObject({ status: 'failed', rows: 4, valid: 2, quarantined: 2, malformed: 1 });
    expect(outcome.columns.find((column) => column.column === 'tenure')).toEqual({
      column: 'tenure',
      type: 'integral',
      present: 2,
      missing: 0,
      missingFraction: 0,
      min: 10,
      max: 30,
      mean: 20,
      psi: null,
      quarantined: { missing: 0, type: 1, range: 0, category: 0 },
    });
    expect(outcome.columns.find((column) => column.column === 'plan')).toMatchObject({ present: 2, min: null, mean: null });
    expect(outcome.violations).toEqual([
      {
        constraint: 'quarantined-fraction',
        column: null,
        observed: 0.5,
        expected: 0.25,
        message: "2 of 4 rows (50%) were quarantined ('tenure' type 1, malformed 1); at most 25% may be",
      },
    ]);
  });

  test('names every violated dataset-level constraint: completeness, too few rows, a required column missing from a header, an undeclared column', () => {
    const validator = new DataValidator(parseConstraints({ ...CONSTRAINTS, dataset: { minRows: 5, maxQuarantinedFraction: 1, allowUndeclaredColumns: false } }));
    validator.addHeader(['tenure', 'charges', 'plan', 'churned', 'note']);
    validator.add({ ...row({ charges: '' }), note: 'x' });
    validator.add(row({ charges: ' ' }));
    validator.add(row());
    const { status, violations } = validator.finish();
    expect(status).toBe('failed');
    expect(violations).toEqual([
      { constraint: 'required-column', column: 'customer_id', observed: 1, expected: 0, message: "required column 'customer_id' is missing from the header of 1 CSV object" },
      { constraint: 'undeclared-column', column: 'note', observed: 1, expected: 0, message: "column 'note' is not declared (in 1 row) and dataset.allowUndeclaredColumns is false" },
      {
        constraint: 'completeness',
        column: 'charges',
        observed: 2 / 3,
        expected: 0.1,
        message: "'charges' is missing in 66.7% of the valid rows (2 of 3); at most 10% may be",
      },
      { constraint: 'min-rows', column: null, observed: 3, expected: 5, message: '3 valid rows; at least 5 required' },
    ]);
  });

  test('fails an empty dataset on its row count, and by default any quarantined row', () => {
    expect(new DataValidator(parseConstraints({ version: 1, columns: [{ name: 'a', type: 'integral' }] })).finish().violations).toEqual([
      { constraint: 'min-rows', column: null, observed: 0, expected: 1, message: '0 valid rows; at least 1 required' },
    ]);
    const strict = new DataValidator(parseConstraints({ version: 1, columns: [{ name: 'a', type: 'integral' }] }));
    strict.add({ a: 1 });
    strict.add({ a: 'x' });
    expect(strict.finish().violations.map((violation) => violation.constraint)).toEqual(['quarantined-fraction']);
  });

  test('flags a column whose distribution drifted from the baseline, and judges none with too few values', () => {
    const reference = Array.from({ length: 400 }, (_, index) => ({ x: index % 100, plan: index % 4 === 0 ? 'annual' : 'monthly' }));
    const constraints = parseConstraints({
      version: 1,
      columns: [
        { name: 'x', type: 'fractional' },
        { name: 'plan', type: 'string' },
      ],
      drift: { baseline: buildBaseline(['x', 'plan'], reference, { categorical: ['plan'] }), psiThreshold: 0.2, minRows: 50 },
    });
    const same = new DataValidator(constraints);
    reference.forEach((values) => same.add(values));
    expect(same.finish()).toMatchObject({ status: 'passed', violations: [] });
    expect(same.finish().columns.map((column) => column.psi)).toEqual([expect.closeTo(0, 9), expect.closeTo(0, 9)]);

    const shifted = new DataValidator(constraints);
    for (let index = 0; index < 200; index += 1) shifted.add({ x: 80 + (index % 40), plan: index % 2 === 0 ? 'weekly' : 'monthly' });
    const { violations, columns } = shifted.finish();
    expect(violations.map((violation) => [violation.constraint, violation.column])).toEqual([
      ['distribution', 'x'],
      ['distribution', 'plan'],
    ]);
    expect(violations[0]).toMatchObject({ observed: columns[0]!.psi, expected: 0.2, message: expect.stringMatching(/^'x' has drifted from the baseline: PSI \d+\.\d{3} is above 0\.2$/) });

    const few = new DataValidator(constraints);
    for (let index = 0; index < 49; index += 1) few.add({ x: 99, plan: 'weekly' });
    expect(few.finish()).toMatchObject({ status: 'passed', columns: [{ psi: null }, { psi: null }] });
  });

  test('a column threshold overrides the document one', () => {
    const reference = Array.from({ length: 200 }, (_, index) => ({ x: index % 10 }));
    const baseline = buildBaseline(['x'], reference);
    const constraints = parseConstraints({ version: 1, columns: [{ name: 'x', type: 'integral', psiThreshold: 50 }], drift: { baseline, minRows: 10 } });
    const validator = new DataValidator(constraints);
    for (let index = 0; index < 100; index += 1) validator.add({ x: 9 });
    expect(validator.finish().status).toBe('passed');
  });

  test('refuses a state that is not one of these constraints', () => {
    const constraints = parseConstraints(CONSTRAINTS);
    const state = new DataValidator(constraints).toState();
    expect(() => DataValidator.fromState(constraints, { ...state, columns: state.columns.slice(1) })).toThrow(ValidatorStateError);
    expect(() => DataValidator.fromState(constraints, { nope: true })).toThrow(/^not a validator state/);
  });
});

describe('suggestConstraints', () => {
  const reference: DataRow[] = [
    { id: 'a', n: '3', x: '1.5', plan: 'annual', flag: 'true', extra: '', blob: { nested: 1 } },
    { id: 'b', n: '10', x: '2.5', plan: 'monthly', flag: 'false', extra: 'z', blob: { nested: 2 } },
    { id: 'c', n: '7', x: '-0.5', plan: 'monthly', flag: 'TRUE', extra: '' },
    { id: 'd', n: '5', x: '0.5', plan: 'annual', flag: 'false', extra: '' },
  ];
  const columns = ['id', 'n', 'x', 'plan', 'flag', 'extra', 'blob'];

  test('infers types, ranges, categories, required columns and completeness, and leaves out columns of objects', () => {
    const constraints = suggestConstraints(columns, reference, { maxCategories: 3, completenessSlack: 0.05, drift: false, datasetVersion: 'v7', minRows: 3 });
    expect(constraints).toEqual({
      version: 1,
      datasetVersion: 'v7',
      columns: [
        { name: 'id', type: 'string', required: true },
        { name: 'n', type: 'integral', required: true, min: 3, max: 10 },
        { name: 'x', type: 'fractional', required: true, min: -0.5, max: 2.5 },
        { name: 'plan', type: 'string', required: true, categories: ['annual', 'monthly'] },
        { name: 'flag', type: 'boolean', required: true },
        { name: 'extra', type: 'string', maxMissingFraction: 0.8 },
      ],
      dataset: { minRows: 3, maxQuarantinedFraction: 0 },
    });
  });

  test('widens ranges by the margin, outward to whole numbers for integral columns, never below 0 for a non-negative column', () => {
    const constraints = suggestConstraints(columns, reference, { margin: 0.25, drift: false, ignore: ['blob'] });
    expect(constraints.columns.find((column) => column.name === 'n')).toMatchObject({ min: 1, max: 12 });
    expect(constraints.columns.find((column) => column.name === 'x')).toMatchObject({ min: -1.25, max: 3.25 });
    const wide = suggestConstraints(columns, reference, { margin: 1, drift: false, ignore: ['blob'] });
    expect(wide.columns.find((column) => column.name === 'n')).toMatchObject({ min: 0, max: 17 });
    expect(wide.columns.find((column) => column.name === 'x')).toMatchObject({ min: -3.5, max: 5.5 });
    // 20.5 - 0.1 × 79.4 is 12.559999999999999 in floating point: the bound is written 12.56.
    const charges = suggestConstraints(['c'], [{ c: 20.5 }, { c: 99.9 }], { margin: 0.1, drift: false });
    expect(charges.columns[0]).toMatchObject({ min: 12.56, max: 107.84 });
  });

  test('takes the types, required columns and ignored columns it is given', () => {
    const constraints = suggestConstraints(columns, reference, { types: { n: 'string' }, required: ['id'], ignore: ['extra', 'blob'], drift: false, completenessSlack: 0 });
    expect(constraints.columns.map((column) => [column.name, column.type, column.required ?? false])).toEqual([
      ['id', 'string', true],
      ['n', 'string', false],
      ['x', 'fractional', false],
      ['plan', 'string', false],
      ['flag', 'boolean', false],
    ]);
  });

  test('adds a drift baseline of the numeric, boolean and categorised string columns', () => {
    const constraints = suggestConstraints(columns, reference, { maxCategories: 3, bins: 2, psiThreshold: 0.3, driftMinRows: 2 });
    expect(constraints.drift).toMatchObject({ psiThreshold: 0.3, minRows: 2 });
    expect(Object.fromEntries(Object.entries(constraints.drift!.baseline.features).map(([name, feature]) => [name, feature.type]))).toEqual({
      n: 'numeric',
      x: 'numeric',
      plan: 'categorical',
      flag: 'categorical',
    });
    expect(constraints.drift!.baseline.features.flag).toEqual({ type: 'categorical', proportions: { true: 0.5, false: 0.5 } });
  });

  test('refuses options that make no sense', () => {
    expect(() => suggestConstraints(['a'], [{ a: 1 }], { margin: -1 })).toThrow('margin: must be a finite number ≥ 0; got -1');
    expect(() => suggestConstraints(['a', 'a'], [{ a: 1 }])).toThrow(/names a column twice/);
    expect(() => suggestConstraints(['a'], [{ a: {} }])).toThrow(/no column to constrain/);
  });
});

describe('CSV and JSON Lines', () => {
  test('reads a CSV file: quoted fields with commas, quotes and line breaks, a BOM, blank lines, bad rows', () => {
    const text = '\ufeffid, note ,n\r\n1,"a, ""b""",3\n\n2,"two\nlines",4\n3,short\n4,"open,5\n';
    const { columns, lines } = parseDataset('csv', text);
    expect(columns).toEqual(['id', 'note', 'n']);
    expect(lines).toEqual([
      { line: 2, text: '1,"a, ""b""",3', row: { id: '1', note: 'a, "b"', n: '3' } },
      { line: 4, text: '2,"two\nlines",4', row: { id: '2', note: 'two\nlines', n: '4' } },
      { line: 6, text: '3,short', malformed: 'line 6 has 2 fields; the header has 3' },
      { line: 7, text: '4,"open,5\n', malformed: 'line 7 has an unterminated quoted field' },
    ]);
  });

  test('makes every row of a CSV file with an unusable header malformed', () => {
    expect(parseCsvHeader('a,,b')).toEqual({ problem: 'the CSV header (line 1) names no column 2' });
    expect(parseCsvHeader('a,b,a')).toEqual({ problem: "the CSV header (line 1) names column 'a' twice" });
    expect(parseCsvRecord('1,2', { problem: 'the CSV header (line 1) names no column 2' }, 2)).toEqual({
      line: 2,
      text: '1,2',
      malformed: 'the CSV header (line 1) names no column 2, so line 2 cannot be read',
    });
  });

  test('knows when a CSV record goes on on the next line', () => {
    expect(csvRecordIsOpen('1,"a')).toBe(true);
    expect(csvRecordIsOpen('1,"a\nb"')).toBe(false);
    expect(csvRecordIsOpen('1,a"b')).toBe(false);
  });

  test('reads JSON Lines: one object per line; anything else is malformed', () => {
    const { columns, lines } = parseDataset('jsonl', '{"a":1}\n\n[1]\nnope\r\n{"b":null,"a":"x"}');
    expect(columns).toEqual(['a', 'b']);
    expect(lines).toEqual([
      { line: 1, text: '{"a":1}', row: { a: 1 } },
      { line: 3, text: '[1]', malformed: 'line 3 is not a JSON object (got an array)' },
      { line: 4, text: 'nope', malformed: 'line 4 is not valid JSON' },
      { line: 5, text: '{"b":null,"a":"x"}', row: { b: null, a: 'x' } },
    ]);
    expect(parseJsonRecord('null', 9)).toMatchObject({ malformed: 'line 9 is not a JSON object (got null)' });
  });

  test('writes a quarantined line as one JSON object with its object, line, reasons and text', () => {
    const line = quarantineLine({ object: 'a.csv', line: 3, reasons: [{ kind: 'range', column: 'n', message: 'is below the minimum 0; got -1' }], text: '-1' });
    expect(line.endsWith('\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({ object: 'a.csv', line: 3, reasons: [{ kind: 'range', column: 'n', message: 'is below the minimum 0; got -1' }], text: '-1' });
  });
});

describe('the validate-data run', () => {
  const EVENT = { datasetUri: 's3://data-bucket/train/', format: 'csv', constraintsUri: 's3://cfg/constraints.json', reportUri: 's3://data-bucket/train/validation/' };

  test('reads its input', () => {
    expect(parseValidateInput({ ...EVENT, kmsKeyId: 'alias/ml', continuation: null })).toEqual({
      dataset: { bucket: 'data-bucket', key: 'train/', uri: 's3://data-bucket/train/', format: 'csv' },
      constraints: { bucket: 'cfg', key: 'constraints.json', uri: 's3://cfg/constraints.json' },
      report: { bucket: 'data-bucket', key: 'train/validation/', uri: 's3://data-bucket/train/validation/' },
      kmsKeyId: 'alias/ml',
    });
    expect(parseValidateInput({ records: [{ a: 1 }], constraintsUri: EVENT.constraintsUri, reportUri: 's3://bkt/r/' })).toMatchObject({ records: [{ a: 1 }] });
  });

  test.each([
    [{ ...EVENT, datasetUri: 's3://data-bucket/train' }, 'datasetUri', 'datasetUri: must be s3://<bucket>/<prefix>/ (ending in /)'],
    [{ ...EVENT, format: 'parquet' }, 'format', 'format: must be one of csv, jsonl'],
    [{ ...EVENT, format: undefined }, 'format', 'format: is required with datasetUri (one of csv, jsonl)'],
    [{ ...EVENT, constraintsUri: 's3://cfg/' }, 'constraintsUri', 'constraintsUri: must be s3://<bucket>/<key>'],
    [{ ...EVENT, reportUri: undefined }, 'reportUri', 'reportUri: is required (s3://bucket/prefix/ to write the report and the quarantine to)'],
    [{ ...EVENT, reportUri: EVENT.datasetUri }, 'reportUri', 'reportUri: must not be the dataset prefix itself (give a prefix of its own, e.g. <datasetUri>validation/)'],
    [{ ...EVENT, records: [{ a: 1 }] }, 'datasetUri', 'datasetUri: give either datasetUri (a dataset under an S3 prefix) or records (a micro-batch), not both or neither'],
    [{ ...EVENT, bucket: 'x' }, 'bucket', 'bucket: unknown field'],
    ['nope', 'input', 'input: must be an object with datasetUri (or records), format, constraintsUri and reportUri'],
  ])('refuses %j, naming %s', (event, field, message) => {
    let error: unknown;
    try {
      parseValidateInput(event);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DataValidationInputError);
    expect(error).toMatchObject({ name: 'DataValidationInputError', field, message });
  });

  test.each([
    ['train/part-0000.csv', true],
    ['train/2026/11/part-0000.csv', true],
    ['train/_SUCCESS', false],
    ['train/_temporary/0/part-0000.csv', false],
    ['train/.part-0000.csv.crc', false],
    ['train/folder/', false],
    ['train/', false],
    ['train/validation/report.json', false],
    ['train/validation-notes.csv', true],
    ['other/part-0000.csv', false],
  ])('treats %s as data: %s', (key, data) => {
    expect(isDatasetObject(key, 'train/', ['train/validation/'])).toBe(data);
  });

  test('names its parts and state objects so that they sort in order', () => {
    expect(quarantinePartKey('v/', 12)).toBe('v/quarantine/part-00012.jsonl');
    expect(stateKey('v/', 'run-1', 3)).toBe('v/_state/run-1/00003.json');
  });

  test('reads back the continuation it returned, and nothing else', () => {
    const token = { runId: '6f1c-a2', call: 3, etag: '"abc"' };
    expect(decodeContinuation(encodeContinuation(token))).toEqual(token);
    expect(() => decodeContinuation('bogus')).toThrow('continuation: is not a continuation this function returned');
    expect(() => decodeContinuation(encodeContinuation({ ...token, runId: '../x' }))).toThrow(DataValidationInputError);
  });

  test('reads back its progress, only for the same dataset, report and constraints', () => {
    const input = parseValidateInput(EVENT);
    const progress: RunProgress = {
      runId: 'r',
      call: 1,
      datasetUri: EVENT.datasetUri,
      reportUri: EVENT.reportUri,
      format: 'csv',
      constraints: { uri: EVENT.constraintsUri, versionId: null, etag: '"e"' },
      startedAt: '2026-11-26T00:00:00.000Z',
      objects: 1,
      after: 'train/a.csv',
      current: { key: 'train/b.csv', etag: '"b"', offset: 120, line: 7, header: { columns: ['a'] } },
      quarantine: { parts: ['s3://data-bucket/train/validation/quarantine/part-00000.jsonl'], sample: [{ object: 'train/a.csv', line: 2, reasons: [{ kind: 'malformed', message: 'm' }] }] },
      validator: new DataValidator(parseConstraints(CONSTRAINTS)).toState(),
    };
    expect(decodeProgress(encodeProgress(progress), input)).toEqual(progress);
    expect(() => decodeProgress(encodeProgress(progress), parseValidateInput({ ...EVENT, datasetUri: 's3://data-bucket/other/' }))).toThrow(/^continuation: was returned for s3:\/\/data-bucket\/train\//);
    expect(() => decodeProgress(encodeProgress(progress), parseValidateInput({ ...EVENT, constraintsUri: 's3://cfg/other.json' }))).toThrow(/^continuation: was returned for the constraints/);
    expect(() => decodeProgress('{}', input)).toThrow("continuation: its state object is not one this function wrote; start the validation again");
  });

  test('samples the first quarantined lines only', () => {
    let sample: ReturnType<typeof withQuarantineSample> = [];
    for (let line = 1; line <= 15; line += 1) sample = withQuarantineSample(sample, { object: 'a', line, reasons: [] });
    expect(sample.map((entry) => entry.line)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  test('reports which constraints judged the data', () => {
    const validator = new DataValidator(parseConstraints(CONSTRAINTS));
    validator.add(row());
    validator.add(row());
    const report = buildReport({
      outcome: validator.finish(),
      constraints: parseConstraints(CONSTRAINTS),
      pinned: { uri: EVENT.constraintsUri, versionId: 'v-1', etag: '"e"' },
      dataset: { uri: EVENT.datasetUri, format: 'csv', objects: 1 },
      reportUri: EVENT.reportUri,
      quarantine: { parts: [], sample: [] },
      startedAt: 's',
      finishedAt: 'f',
      calls: 1,
    });
    expect(report).toMatchObject({
      version: 1,
      status: 'passed',
      constraints: { uri: EVENT.constraintsUri, versionId: 'v-1', etag: '"e"', formatVersion: 1, datasetVersion: 'churn-2026-11', description: 'churn training data' },
      rows: 2,
      valid: 2,
      quarantine: { prefix: 's3://data-bucket/train/validation/quarantine/', objects: [] },
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------

const missingArb = fc.constantFrom(undefined, null, '', '  ');
const textArb = fc.string({ unit: fc.constantFrom('a', 'b', 'c', ' ', ',', '"', '\n', 'é'), maxLength: 4 });

/** Values a column of this type holds, as JSON values or text, with some missing. */
const valueArb = (type: ColumnType): fc.Arbitrary<unknown> => {
  const present: Record<ColumnType, fc.Arbitrary<unknown>> = {
    integral: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 }).map(String)),
    fractional: fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.double({ min: -1e3, max: 1e3, noNaN: true }).map(String)),
    boolean: fc.oneof(fc.boolean(), fc.constantFrom('true', 'False', 'TRUE')),
    string: fc.oneof(fc.constantFrom('red', 'green', ' blue '), textArb),
  };
  return fc.oneof({ weight: 1, arbitrary: missingArb }, { weight: 5, arbitrary: present[type] });
};

const datasetArb = fc
  .uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { minLength: 1, maxLength: 4 })
  .chain((names) => fc.tuple(fc.constant(names), fc.array(fc.constantFrom(...COLUMN_TYPES), { minLength: names.length, maxLength: names.length })))
  .chain(([names, types]) =>
    fc.tuple(
      fc.constant(names),
      fc.array(fc.record(Object.fromEntries(names.map((name, index) => [name, valueArb(types[index]!)]))) as fc.Arbitrary<Record<string, unknown>>, { minLength: 1, maxLength: 60 }),
    ),
  );

/** Any value at all, to throw at any constraints. */
const anyValueArb: fc.Arbitrary<unknown> = fc.oneof(
  missingArb,
  fc.integer({ min: -50, max: 50 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  textArb,
  fc.constantFrom('12', '-3', '2.5', 'true', 'x', 'red'),
  fc.constant({ nested: true }),
  fc.constant([1]),
);

const constraintsArb: fc.Arbitrary<Constraints> = fc
  .uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 4 })
  .chain((names) =>
    fc.tuple(
      ...names.map((name) =>
        fc.record({ type: fc.constantFrom(...COLUMN_TYPES), required: fc.boolean(), low: fc.integer({ min: -20, max: 0 }), high: fc.integer({ min: 0, max: 20 }), ranged: fc.boolean() }).map((spec) => ({
          name,
          type: spec.type,
          required: spec.required,
          ...((spec.type === 'integral' || spec.type === 'fractional') && spec.ranged ? { min: spec.low, max: spec.high } : {}),
          ...(spec.type === 'string' && spec.ranged ? { categories: ['red', 'x'] } : {}),
        })),
      ),
    ),
  )
  .map((columns) => parseConstraints({ version: 1, columns, dataset: { maxQuarantinedFraction: 0.5 } }));

const anyRowArb = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'z'), anyValueArb, { maxKeys: 5 });

/** Renders rows as CSV text, every field quoted (a missing value is an empty field). */
function toCsv(names: readonly string[], rows: ReadonlyArray<Record<string, unknown>>): string {
  const cell = (value: unknown): string => `"${(value === undefined || value === null ? '' : String(value)).replace(/"/g, '""')}"`;
  return [names.join(','), ...rows.map((values) => names.map((name) => cell(values[name])).join(','))].join('\n');
}

describe('properties', () => {
  test('a dataset validated against the constraints suggested from it passes, as rows or as CSV text', () => {
    fc.assert(
      fc.property(datasetArb, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.boolean(), ([names, rows], margin, completenessSlack, asCsv) => {
        let columns: readonly string[] = names;
        let data: readonly DataRow[] = rows;
        if (asCsv) {
          const parsed = parseDataset('csv', toCsv(names, rows));
          columns = parsed.columns;
          data = parsed.lines.map((line) => line.row!);
          expect(data).toHaveLength(rows.length);
        }
        const constraints = suggestConstraints(columns, data, { margin, completenessSlack, bins: 4, driftMinRows: 1 });
        const validator = new DataValidator(constraints);
        for (const values of data) expect(validator.add(values)).toEqual([]);
        const outcome = validator.finish();
        expect(outcome.violations).toEqual([]);
        expect(outcome).toMatchObject({ status: 'passed', rows: data.length, valid: data.length, quarantined: 0 });
      }),
      { numRuns: 150 },
    );
  });

  test('a quarantined row always has at least one reason, each naming a declared column; rowProblems says the same', () => {
    fc.assert(
      fc.property(constraintsArb, fc.array(anyRowArb, { maxLength: 20 }), (constraints, rows) => {
        const declared = new Set(constraints.columns.map((column) => column.name));
        const validator = new DataValidator(constraints);
        for (const values of rows) {
          const expected = validator.rowProblems(values);
          const before = validator.quarantined;
          const problems = validator.add(values);
          expect(problems).toEqual(expected);
          expect(validator.quarantined - before).toBe(problems.length > 0 ? 1 : 0);
          for (const problem of problems) expect(declared.has(problem.column)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('the counts add up: rows = valid + quarantined, malformed lines included', () => {
    fc.assert(
      fc.property(constraintsArb, fc.array(fc.option(anyRowArb, { nil: undefined }), { maxLength: 30 }), (constraints, lines) => {
        const validator = new DataValidator(constraints);
        for (const values of lines) {
          if (values === undefined) validator.addMalformed();
          else validator.add(values);
        }
        const outcome = validator.finish();
        expect(outcome.rows).toBe(lines.length);
        expect(outcome.valid + outcome.quarantined).toBe(outcome.rows);
        expect(outcome.malformed).toBe(lines.filter((values) => values === undefined).length);
        for (const column of outcome.columns) expect(column.present + column.missing).toBe(outcome.valid);
      }),
      { numRuns: 200 },
    );
  });

  test('validating in chunks, the state going through JSON between them, gives the result of one pass', () => {
    type Step = { row: DataRow } | { header: string[] } | { malformed: true };
    const withBaselineArb = datasetArb.chain(([names, rows]) => {
      const suggested = suggestConstraints(names, rows, { bins: 3, driftMinRows: 1, maxQuarantinedFraction: 0.5, required: names.slice(0, 1) });
      const stepArb: fc.Arbitrary<Step> = fc.oneof(
        { weight: 6, arbitrary: fc.oneof(anyRowArb, fc.constantFrom(...rows)).map((row) => ({ row })) },
        { weight: 1, arbitrary: fc.subarray([...names, 'z']).map((header) => ({ header })) },
        { weight: 1, arbitrary: fc.constant({ malformed: true as const }) },
      );
      return fc.tuple(
        fc.constant(parseConstraints({ ...suggested, dataset: { ...suggested.dataset, allowUndeclaredColumns: false } })),
        fc.array(stepArb, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 5 }),
      );
    });
    const apply = (validator: DataValidator, step: Step): void => {
      if ('row' in step) validator.add(step.row);
      else if ('header' in step) validator.addHeader(step.header);
      else validator.addMalformed();
    };
    fc.assert(
      fc.property(withBaselineArb, ([constraints, steps, cuts]) => {
        const whole = new DataValidator(constraints);
        steps.forEach((step) => apply(whole, step));
        const points = [...new Set(cuts.map((cut) => cut % (steps.length + 1)))].sort((a, b) => a - b);
        let validator = new DataValidator(constraints);
        let from = 0;
        for (const point of [...points, steps.length]) {
          steps.slice(from, point).forEach((step) => apply(validator, step));
          from = point;
          validator = DataValidator.fromState(constraints, JSON.parse(JSON.stringify(validator.toState())));
        }
        expect(validator.finish()).toEqual(whole.finish());
      }),
      { numRuns: 150 },
    );
  });
});

test('suggests a range for values at the ends of the doubles, where rounding to a power of ten overflows', () => {
  // Found by the property above: 10^329 is Infinity, and 0 × Infinity is NaN.
  for (const data of [[{ a: 0 }, { a: Number.MIN_VALUE }], [{ a: Number.MIN_VALUE }, { a: 4 * Number.MIN_VALUE }], [{ a: -1e-310 }, { a: 1e-310 }]]) {
    const constraints = suggestConstraints(['a'], data, { margin: 0.5, completenessSlack: 0, bins: 4, driftMinRows: 1 });
    const [column] = constraints.columns;
    expect(Number.isFinite(column!.min)).toBe(true);
    expect(Number.isFinite(column!.max)).toBe(true);
    const validator = new DataValidator(constraints);
    for (const values of data) expect(validator.add(values)).toEqual([]);
  }
});
