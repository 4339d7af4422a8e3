// Builds the drift detector's baseline from a training sample (CSV with a header row):
//   npm run drift-baseline -- --input train.csv --output drift-baseline.json [--categorical plan,region] [--ignore label] [--bins 10]
// then upload it to s3://<model-artifact bucket>/baselines/<model>/drift-baseline.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { buildBaseline, parseBaseline } from '../lambda/shared/drift';
import { parseCsvRows } from '../lambda/shared/features';

export interface BaselineOptions {
  readonly bins?: number;
  readonly categorical?: readonly string[];
  readonly ignore?: readonly string[];
}

/** The baseline of a CSV training sample whose first row names the model's input columns. */
export function baselineFromCsv(csv: string, options: BaselineOptions = {}): ReturnType<typeof buildBaseline> {
  const [header, ...rows] = parseCsvRows(csv);
  if (!header || rows.length === 0) throw new Error('input: needs a header row and at least one data row');
  const columns = header.fields.map((field) => field.trim());
  const records = rows.map((row) => Object.fromEntries(columns.map((column, index) => [column, row.fields[index] ?? ''])));
  // Validate what we write with the same schema the detector reads it with.
  return parseBaseline(buildBaseline(columns, records, options));
}

function argument(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const input = argument(args, 'input');
  const output = argument(args, 'output');
  if (!input || !output) {
    console.error('usage: npm run drift-baseline -- --input train.csv --output drift-baseline.json [--categorical a,b] [--ignore label] [--bins 10]');
    process.exit(2);
  }
  const list = (name: string) => argument(args, name)?.split(',').map((value) => value.trim()).filter(Boolean);
  const baseline = baselineFromCsv(readFileSync(input, 'utf8'), {
    bins: argument(args, 'bins') ? Number(argument(args, 'bins')) : undefined,
    categorical: list('categorical'),
    ignore: list('ignore'),
  });
  writeFileSync(output, `${JSON.stringify(baseline)}\n`);
  console.log(`${output}: baseline of ${Object.keys(baseline.features).length} features over columns ${baseline.columns.join(', ')}`);
}
