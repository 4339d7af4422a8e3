// The pure logic of incremental training from streamed micro-batches (seed pattern 17, online learning): how the
// labelled events a delivery stream wrote are split into records, where each micro-batch's validated records go,
// and when enough of them have arrived to start an incremental update. lambda/online-learning does the I/O.

/** A micro-batch object that is not one JSON object after another, or an event field that is not valid. */
export class OnlineLearningInputError extends Error {
  override readonly name = 'OnlineLearningInputError';
}

/** What a micro-batch object holds, in order: its records and the stretches of text that are no record. */
export interface SplitRecords {
  readonly records: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** Text between or inside records that is not a JSON object (trimmed, at most 1 000 characters each). */
  readonly malformed: readonly string[];
}

const MAX_MALFORMED_TEXT = 1000;

/**
 * Splits what a delivery stream wrote into JSON objects. Producers may end each record with a newline (JSON Lines)
 * or not: Firehose concatenates records as they come, so `{"a":1}{"a":2}` is two records. A stretch that is not
 * a JSON object (a number, a truncated object, bytes that are no JSON) is returned in `malformed`, never dropped:
 * the caller quarantines it. Brackets inside strings are not counted.
 */
export function splitJsonRecords(text: string): SplitRecords {
  const records: Array<Record<string, unknown>> = [];
  const malformed: string[] = [];
  let junkStart = -1;
  const flushJunk = (end: number) => {
    if (junkStart < 0) return;
    const junk = text.slice(junkStart, end).trim();
    if (junk.length > 0) malformed.push(junk.slice(0, MAX_MALFORMED_TEXT));
    junkStart = -1;
  };
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (char !== '{') {
      if (junkStart < 0 && !/\s/.test(char)) junkStart = index;
      // A newline ends a stretch of junk: the next line may be a record again.
      if (char === '\n') flushJunk(index);
      index += 1;
      continue;
    }
    const end = objectEnd(text, index);
    if (end < 0) {
      // An object that never closes: the rest of its line is junk, and the scan goes on after it.
      const lineEnd = text.indexOf('\n', index);
      if (junkStart < 0) junkStart = index;
      index = lineEnd < 0 ? text.length : lineEnd;
      continue;
    }
    const slice = text.slice(index, end + 1);
    let value: unknown;
    try {
      value = JSON.parse(slice);
    } catch {
      value = undefined;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      flushJunk(index);
      records.push(value as Record<string, unknown>);
    } else if (junkStart < 0) {
      junkStart = index;
    }
    index = end + 1;
  }
  flushJunk(text.length);
  return { records, malformed };
}

/** The index of the `}` that closes the object opened at `start`, or -1 when the text ends first. */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let index = start; index < text.length; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === '{' || char === '[') {
      depth += 1;
    } else if (char === '}' || char === ']') {
      depth -= 1;
      if (depth === 0) return char === '}' ? index : -1;
      if (depth < 0) return -1;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------------

/** The id of a window of validated records: `w-<UTC time it opened, to the second>`, so that windows sort by age. */
export function windowId(openedAt: Date): string {
  return `w-${openedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}`;
}

export const WINDOW_ID_PATTERN = /^w-\d{8}T\d{6}Z$/;

/** When a window opened, from its id. */
export function windowOpenedAt(id: string): Date {
  const match = /^w-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(id);
  if (!match) throw new OnlineLearningInputError(`window: must be a window id such as w-20261207T101500Z; got ${JSON.stringify(id)}`);
  return new Date(`${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}Z`);
}

/** The window that opens when `closing` closes at `now`: named by `now`, or a second after `closing` opened if that is later. */
export function nextWindowId(closing: string, now: Date): string {
  const after = windowOpenedAt(closing).getTime() + 1000;
  return windowId(new Date(Math.max(Math.floor(now.getTime() / 1000) * 1000, after)));
}

/** Where the delivery stream writes a family's micro-batches. */
export const arrivedPrefix = (family: string): string => `${family}/stream/arrived/`;
/** The training dataset a window's validated records make up: the prefix an incremental run trains on. */
export const windowPrefix = (family: string, window: string): string => `${family}/datasets/increments/${window}/`;
/** Where a micro-batch's quarantined records go, with their reasons. */
export const quarantineKey = (family: string, window: string, batch: string): string => `${family}/stream/quarantine/${window}/${batch}.jsonl`;
/** Where a micro-batch that failed a dataset-level constraint is kept whole, beside its report. */
export const rejectedKey = (family: string, batch: string): string => `${family}/stream/rejected/${batch}`;

/**
 * The name of a micro-batch: its key below the arrived prefix with '/' as '-' (the stream's time partition and
 * object name), unique per object and safe as an object name.
 */
export function batchName(family: string, key: string): string {
  const prefix = arrivedPrefix(family);
  if (!key.startsWith(prefix) || key.length === prefix.length) throw new OnlineLearningInputError(`key: must be an object under ${prefix}; got ${JSON.stringify(key)}`);
  return key.slice(prefix.length).replace(/\//g, '-');
}

/** The validated part of a micro-batch in its window, in the training datasets' format. */
export const windowPartKey = (family: string, window: string, batch: string, format: 'csv' | 'jsonl'): string =>
  `${windowPrefix(family, window)}${batch.replace(/\.(jsonl?|csv|txt)$/, '')}.${format}`;

// ---------------------------------------------------------------------------------------------------
// Writing the validated records
// ---------------------------------------------------------------------------------------------------

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Rows in the training datasets' format: CSV with a header of `columns` (a row's other fields are left out, a
 * missing one is an empty cell), or JSON Lines of the rows as they are. Ends with a newline; no rows, no text.
 */
export function formatRows(rows: ReadonlyArray<Readonly<Record<string, unknown>>>, format: 'csv' | 'jsonl', columns: readonly string[]): string {
  if (rows.length === 0) return '';
  if (format === 'jsonl') return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
  const lines = [columns.map(csvCell).join(',')];
  for (const row of rows) lines.push(columns.map((column) => csvCell(row[column])).join(','));
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------
// When to update
// ---------------------------------------------------------------------------------------------------

/** The guard rails against runaway updates. */
export interface UpdateSettings {
  /** The fewest validated records a window must hold before it is trained on. */
  readonly minRecords: number;
  /** The least time between the end of one update and the start of the next. */
  readonly cooldownSeconds: number;
  /** How long an update may hold its lock: after it, a lock whose workflow died is taken over. */
  readonly updateTimeoutSeconds: number;
}

/** The part of the state the decision reads. */
export interface UpdateState {
  /** The window being filled, and what it holds. */
  readonly openWindow: string;
  readonly windowRecords: number;
  readonly windowObjects: number;
  /** When the last update ended (any outcome); none yet: undefined. */
  readonly lastUpdateAt?: string;
  /** The update under way: its window, what it trains on, when it started and when its lock lapses. */
  readonly update?: { readonly id: string; readonly until: string; readonly startedAt?: string; readonly records?: number; readonly objects?: number };
}

export type UpdateDecision =
  | { readonly decision: 'start'; readonly window: string; readonly records: number; readonly objects: number; readonly takesOver?: string; readonly resumed?: boolean }
  | { readonly decision: 'busy'; readonly reason: string }
  | { readonly decision: 'waiting'; readonly reason: string }
  | { readonly decision: 'cooling-down'; readonly reason: string; readonly until: string };

/**
 * Whether to start an update now: never while one runs (unless its lock lapsed: its workflow died, or it is the one
 * started at this same `now`, whose start is answered again), never with
 * fewer than `minRecords` validated records in the open window, and never within `cooldownSeconds` of the last
 * update's end. Otherwise the open window is closed and trained on.
 */
export function decideUpdate(state: UpdateState, settings: UpdateSettings, now: Date): UpdateDecision {
  // The update this very call started (a retried call, whose answer was lost: Step Functions keeps the state's
  // entered time across retries): the same answer again, so that its window is still trained on.
  const update = state.update;
  if (update !== undefined && update.startedAt !== undefined && Date.parse(update.startedAt) === now.getTime() && Date.parse(update.until) > now.getTime()) {
    return { decision: 'start', window: update.id, records: update.records ?? 0, objects: update.objects ?? 0, resumed: true };
  }
  if (state.update !== undefined && Date.parse(state.update.until) > now.getTime()) {
    return { decision: 'busy', reason: `update ${state.update.id} is under way (its lock lapses at ${state.update.until})` };
  }
  if (state.windowRecords < settings.minRecords) {
    return { decision: 'waiting', reason: `window ${state.openWindow} holds ${state.windowRecords} validated record(s); an update needs ${settings.minRecords}` };
  }
  if (state.lastUpdateAt !== undefined) {
    const until = Date.parse(state.lastUpdateAt) + settings.cooldownSeconds * 1000;
    if (until > now.getTime()) {
      const at = new Date(until).toISOString();
      return { decision: 'cooling-down', reason: `the last update ended at ${state.lastUpdateAt}; the next may start at ${at}`, until: at };
    }
  }
  return {
    decision: 'start',
    window: state.openWindow,
    records: state.windowRecords,
    objects: state.windowObjects,
    ...(state.update === undefined ? {} : { takesOver: state.update.id }),
  };
}
