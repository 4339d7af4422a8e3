// The prediction cache's pure parts (seed pattern 18, Prediction Cache): the cache key, the in-memory
// tier and the rules for what may be cached. Nothing here talks to AWS; the shared tier (DynamoDB) and the
// middleware that uses both are wired by the inference handler.
//
// Key: SHA-256 over the model family, the model version of every variant that could serve the request,
// the variant the request was assigned to (when the API chose it), the content and accept types and the
// canonical payload. JSON payloads are canonical with sorted object keys, so {"a":1,"b":2} and
// {"b":2,"a":1} share an entry; CSV payloads count by their exact text. A new model version changes the
// key, so it never serves an answer of the version before.
import { createHash } from 'node:crypto';

/**
 * JSON with the keys of every object sorted, arrays in their order: equal for payloads that differ only
 * in key order. The payload came from JSON.parse, so it holds only JSON values.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
}

export interface CacheKeyInput {
  readonly model: string;
  /** Variant name to model version, for every variant that could answer this request. */
  readonly versions: Readonly<Record<string, string>>;
  /** The variant the API assigned (targeted or sticky); absent when the route has one variant. */
  readonly variant?: string;
  readonly contentType: string;
  readonly accept: string;
  /** The parsed JSON payload, or the CSV text. */
  readonly payload: unknown;
  /** True when the payload is CSV text, keyed by its exact bytes. */
  readonly csv?: boolean;
}

/** The cache key: 64 hex characters. */
export function predictionCacheKey(input: CacheKeyInput): string {
  const versions = Object.keys(input.versions)
    .sort()
    .map((variant) => [variant, input.versions[variant]]);
  const head = JSON.stringify([1, input.model, versions, input.variant ?? null, input.contentType.toLowerCase(), input.accept.toLowerCase()]);
  const payload = input.csv && typeof input.payload === 'string' ? `csv:${input.payload}` : `json:${canonicalJson(input.payload)}`;
  return createHash('sha256').update(head).update('\n').update(payload).digest('hex');
}

/** What the cache holds for one key: enough to answer as the model did. */
export interface CachedPrediction {
  readonly body: string;
  readonly contentType: string;
  readonly variant: string;
  readonly modelVersion: string;
  /** When the model answered (ms since the epoch). */
  readonly cachedAt: number;
  /** When the entry stops being served (ms since the epoch). */
  readonly expiresAt: number;
}

/** Approximate bytes an entry occupies in memory (UTF-16 strings plus a fixed overhead). */
export function entryBytes(key: string, entry: CachedPrediction): number {
  return 2 * (key.length + entry.body.length + entry.contentType.length + entry.variant.length + entry.modelVersion.length) + 64;
}

interface Slot<V> {
  readonly value: V;
  readonly bytes: number;
  readonly expiresAt: number;
}

/**
 * A least-recently-used map bounded by bytes, not entries: one large answer cannot crowd out the memory
 * of a function. Expired entries are never returned. An entry larger than the whole budget is not kept.
 */
export class ByteLru<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private used = 0;

  constructor(private readonly maxBytes: number) {
    if (!(Number.isFinite(maxBytes) && maxBytes >= 0)) throw new RangeError(`maxBytes: must be a non-negative number; got ${maxBytes}`);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.slots.size;
  }

  /** The value, when present and not expired at `now`; a hit becomes the most recently used. */
  get(key: string, now: number): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    this.slots.delete(key);
    if (slot.expiresAt <= now) {
      this.used -= slot.bytes;
      return undefined;
    }
    this.slots.set(key, slot);
    return slot.value;
  }

  /** Stores the value as the most recently used, evicting the least recently used until it fits. */
  set(key: string, value: V, bytes: number, expiresAt: number): boolean {
    this.delete(key);
    if (bytes > this.maxBytes) return false;
    while (this.used + bytes > this.maxBytes) {
      const oldest = this.slots.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    this.slots.set(key, { value, bytes, expiresAt });
    this.used += bytes;
    return true;
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.used -= slot.bytes;
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.slots.keys()];
  }
}

/** True when the caller asked not to be served from (or stored in) the cache. */
export function optsOut(options: { readonly cache?: boolean; readonly cacheControl?: string }): boolean {
  if (options.cache === false) return true;
  const directives = (options.cacheControl ?? '')
    .toLowerCase()
    .split(',')
    .map((directive) => directive.trim());
  return directives.includes('no-cache') || directives.includes('no-store');
}

/** DynamoDB's item limit, with room for the key and the other attributes. */
export const MAX_CACHED_BODY_BYTES = 350 * 1024;

/** Whether an answer may be stored: never an error, never one too large for the shared tier. */
export function cacheableAnswer(answer: { readonly body: string }): boolean {
  return Buffer.byteLength(answer.body, 'utf8') <= MAX_CACHED_BODY_BYTES;
}
