import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataValidator, parseConstraints, parseDataset } from '../../lambda/shared/data-validation';
import { constraintsFromText, parseArguments, summary } from '../../scripts/suggest-constraints';
import { REPO_ROOT, run } from '../support/cli';

const rows = Array.from({ length: 300 }, (_, index) => `c-${index},${index % 50},${((index * 7) % 120) + 0.5},${index % 3 === 0 ? 'annual' : 'monthly'},${index % 2 === 0}`);
const CSV = ['customer_id,tenure,charges,plan,churned', ...rows].join('\n');

describe('npm run suggest-constraints', () => {
  test('suggests constraints from a CSV sample that its own rows pass', () => {
    const constraints = constraintsFromText(CSV, 'csv', { margin: 0.1, maxCategories: 5, datasetVersion: 'v1' });
    expect(constraints.columns).toEqual([
      { name: 'customer_id', type: 'string', required: true },
      { name: 'tenure', type: 'integral', required: true, min: 0, max: 54 },
      { name: 'charges', type: 'fractional', required: true, min: 0, max: 131.4 },
      { name: 'plan', type: 'string', required: true, categories: ['annual', 'monthly'] },
      { name: 'churned', type: 'boolean', required: true },
    ]);
    expect(Object.keys(constraints.drift!.baseline.features)).toEqual(['tenure', 'charges', 'plan', 'churned']);
    const validator = new DataValidator(constraints);
    for (const line of parseDataset('csv', CSV).lines) validator.add(line.row!);
    expect(validator.finish()).toMatchObject({ status: 'passed', rows: 300, quarantined: 0 });
    expect(summary(constraints)).toBe('5 columns (5 required), a drift baseline of 4 columns');
  });

  test('reads JSON Lines, with the columns of every record', () => {
    const constraints = constraintsFromText('{"a":1,"b":"x"}\n{"a":2,"c":true}\n', 'jsonl', { drift: false, completenessSlack: 0 });
    expect(constraints.columns).toEqual([
      { name: 'a', type: 'integral', required: true, min: 1, max: 2 },
      { name: 'b', type: 'string', maxMissingFraction: 0.5 },
      { name: 'c', type: 'boolean', maxMissingFraction: 0.5 },
    ]);
  });

  test('refuses a reference dataset with a line that is no row, naming it', () => {
    expect(() => constraintsFromText('a,b\n1,2\n3\n', 'csv')).toThrow('input: line 3 has 1 field; the header has 2; the reference dataset must hold only rows');
    expect(() => constraintsFromText('a,b\n', 'csv')).toThrow('input: needs a header row and at least one row');
  });

  test('reads its arguments', () => {
    expect(
      parseArguments([
        '--input',
        'train.jsonl',
        '--margin',
        '0.1',
        '--types',
        'id=string, n=integral',
        '--required',
        'id,n',
        '--ignore',
        'notes',
        '--no-drift',
        '--max-quarantined-fraction',
        '0.01',
        '--dataset-version',
        '2026-11',
      ]),
    ).toEqual({
      input: 'train.jsonl',
      format: 'jsonl',
      options: { margin: 0.1, types: { id: 'string', n: 'integral' }, required: ['id', 'n'], ignore: ['notes'], drift: false, maxQuarantinedFraction: 0.01, datasetVersion: '2026-11' },
    });
    expect(parseArguments(['--input', 'train.csv', '--output', 'c.json'])).toEqual({ input: 'train.csv', format: 'csv', output: 'c.json', options: {} });
    expect(() => parseArguments([])).toThrow(/^--input is required\nusage: npm run suggest-constraints/);
    expect(() => parseArguments(['--input', 'a.csv', '--bins', 'ten'])).toThrow('--bins must be a number; got ten');
    expect(() => parseArguments(['--input', 'a.csv', '--types', 'a=text'])).toThrow(/^--types takes column=type pairs/);
    expect(() => parseArguments(['--input', 'a.csv', '--colour', 'red'])).toThrow(/^unknown argument --colour/);
  });

  describe('from the command line', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'suggest-constraints-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('writes the document to --output, or prints it; exits 1 naming a bad input and 2 on bad arguments', () => {
      const input = join(dir, 'train.csv');
      const output = join(dir, 'constraints.json');
      writeFileSync(input, CSV);
      const tsNode = join(REPO_ROOT, 'node_modules', '.bin', 'ts-node');
      const script = join(REPO_ROOT, 'scripts', 'suggest-constraints.ts');

      const written = run(tsNode, ['--transpile-only', script, '--input', input, '--output', output, '--max-categories', '5']);
      expect(written).toMatchObject({ status: 0, stdout: `${output}: constraints of ${input}: 5 columns (5 required), a drift baseline of 4 columns\n` });
      const document = parseConstraints(JSON.parse(readFileSync(output, 'utf8')));
      expect(document.columns).toHaveLength(5);

      const printed = run(tsNode, ['--transpile-only', script, '--input', input, '--no-drift']);
      expect(printed.status).toBe(0);
      expect(parseConstraints(JSON.parse(printed.stdout))).toMatchObject({ version: 1, dataset: { maxQuarantinedFraction: 0 } });

      writeFileSync(join(dir, 'bad.csv'), 'a,b\n1\n');
      expect(run(tsNode, ['--transpile-only', script, '--input', join(dir, 'bad.csv')])).toMatchObject({ status: 1, stderr: expect.stringContaining('input: line 2 has 1 field; the header has 2') });
      expect(run(tsNode, ['--transpile-only', script])).toMatchObject({ status: 2, stderr: expect.stringContaining('--input is required') });
    }, 60_000);
  });
});
