// Derives a data-validation constraints document (lambda/shared/data-validation.ts) from a reference
// dataset, CSV with a header row or JSON Lines:
//   npm run suggest-constraints -- --input train.csv [--output constraints.json] [--format csv|jsonl]
//     [--margin 0.1] [--completeness-slack 0.01] [--max-categories 50] [--types id=string,age=integral]
//     [--required id,age] [--ignore notes] [--min-rows 1000] [--max-quarantined-fraction 0.01]
//     [--no-drift] [--bins 10] [--psi-threshold 0.2] [--drift-min-rows 100]
//     [--dataset-version 2026-11] [--description "churn training data"]
// It prints the document without --output. Review it (the ranges, categories and required columns are
// what the reference showed), then upload it, e.g. to s3://<bucket>/constraints/<model>/constraints.json,
// and give its URI to the validate-data function as constraintsUri.
import { readFileSync, writeFileSync } from 'node:fs';
import { COLUMN_TYPES, DATA_FORMATS, parseDataset, suggestConstraints, type ColumnType, type Constraints, type DataFormat, type SuggestOptions } from '../lambda/shared/data-validation';

/** The constraints of a reference dataset's text. Throws naming the first line that is no row. */
export function constraintsFromText(text: string, format: DataFormat, options: SuggestOptions = {}): Constraints {
  const { columns, lines } = parseDataset(format, text);
  const bad = lines.find((line) => line.row === undefined);
  if (bad !== undefined) throw new Error(`input: ${bad.malformed}; the reference dataset must hold only rows`);
  if (columns.length === 0 || lines.length === 0) throw new Error(`input: needs ${format === 'csv' ? 'a header row and ' : ''}at least one row`);
  return suggestConstraints(
    columns,
    lines.map((line) => line.row!),
    options,
  );
}

export interface CliArguments {
  readonly input: string;
  readonly output?: string;
  readonly format: DataFormat;
  readonly options: SuggestOptions;
}

const USAGE =
  'usage: npm run suggest-constraints -- --input train.csv [--output constraints.json] [--format csv|jsonl] [--margin 0.1] [--completeness-slack 0.01] ' +
  '[--max-categories 50] [--types a=string,b=integral] [--required a,b] [--ignore c] [--min-rows 1000] [--max-quarantined-fraction 0.01] ' +
  '[--no-drift] [--bins 10] [--psi-threshold 0.2] [--drift-min-rows 100] [--dataset-version v] [--description text]';

const VALUE_FLAGS = [
  'input',
  'output',
  'format',
  'margin',
  'completeness-slack',
  'max-categories',
  'types',
  'required',
  'ignore',
  'min-rows',
  'max-quarantined-fraction',
  'bins',
  'psi-threshold',
  'drift-min-rows',
  'dataset-version',
  'description',
] as const;

/** Reads the command line; throws an Error whose message is the problem (then the usage). */
export function parseArguments(args: readonly string[]): CliArguments {
  const values = new Map<string, string>();
  let drift = true;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    if (arg === '--no-drift') {
      drift = false;
      continue;
    }
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name === undefined || !(VALUE_FLAGS as readonly string[]).includes(name)) throw new Error(`unknown argument ${arg}\n${USAGE}`);
    const value = args[index + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value\n${USAGE}`);
    values.set(name, value);
    index += 1;
  }
  const input = values.get('input');
  if (input === undefined) throw new Error(`--input is required\n${USAGE}`);
  const format = (values.get('format') ?? (/\.(jsonl|ndjson|json)$/i.test(input) ? 'jsonl' : 'csv')) as DataFormat;
  if (!DATA_FORMATS.includes(format)) throw new Error(`--format must be one of ${DATA_FORMATS.join(', ')}; got ${format}`);
  const number = (name: string): number | undefined => {
    const value = values.get(name);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed)) throw new Error(`--${name} must be a number; got ${value}`);
    return parsed;
  };
  const list = (name: string): string[] | undefined =>
    values
      .get(name)
      ?.split(',')
      .map((value) => value.trim())
      .filter(Boolean);
  let types: Record<string, ColumnType> | undefined;
  for (const pair of list('types') ?? []) {
    const [column, type] = pair.split('=').map((part) => part.trim());
    if (!column || !(COLUMN_TYPES as readonly string[]).includes(type ?? '')) throw new Error(`--types takes column=type pairs, type one of ${COLUMN_TYPES.join(', ')}; got ${pair}`);
    types = { ...types, [column]: type as ColumnType };
  }
  const options: { -readonly [K in keyof SuggestOptions]: SuggestOptions[K] } = {};
  const set = <K extends keyof SuggestOptions>(key: K, value: SuggestOptions[K] | undefined): void => {
    if (value !== undefined) options[key] = value;
  };
  set('margin', number('margin'));
  set('completenessSlack', number('completeness-slack'));
  set('maxCategories', number('max-categories'));
  set('types', types);
  set('required', list('required'));
  set('ignore', list('ignore'));
  set('minRows', number('min-rows'));
  set('maxQuarantinedFraction', number('max-quarantined-fraction'));
  if (!drift) options.drift = false;
  set('bins', number('bins'));
  set('psiThreshold', number('psi-threshold'));
  set('driftMinRows', number('drift-min-rows'));
  set('datasetVersion', values.get('dataset-version'));
  set('description', values.get('description'));
  const output = values.get('output');
  return { input, format, options, ...(output === undefined ? {} : { output }) };
}

/** A one-line account of a document, for the terminal. */
export function summary(constraints: Constraints): string {
  const required = constraints.columns.filter((column) => column.required).length;
  const drift = constraints.drift === undefined ? 'no drift baseline' : `a drift baseline of ${Object.keys(constraints.drift.baseline.features).length} columns`;
  return `${constraints.columns.length} columns (${required} required), ${drift}`;
}

if (require.main === module) {
  let cli: CliArguments;
  try {
    cli = parseArguments(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  try {
    const constraints = constraintsFromText(readFileSync(cli.input, 'utf8'), cli.format, cli.options);
    const text = `${JSON.stringify(constraints, null, 2)}\n`;
    if (cli.output === undefined) {
      process.stdout.write(text);
    } else {
      writeFileSync(cli.output, text);
      console.log(`${cli.output}: constraints of ${cli.input}: ${summary(constraints)}`);
    }
  } catch (error) {
    console.error(`${cli.input}: ${(error as Error).message}`);
    process.exit(1);
  }
}
