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

/** The shared tier: one table for every function instance (DynamoDB in the handler). */
export interface SharedCacheStore {
  get(key: string): Promise<CachedPrediction | undefined>;
  put(key: string, entry: CachedPrediction): Promise<void>;
}

/** Where a cached answer came from. */
export type CacheTier = 'memory' | 'shared';

export interface TieredCacheOptions {
  /** The function's own tier. */
  readonly memory: ByteLru<CachedPrediction>;
  /** The shared tier; absent: memory only. */
  readonly shared?: SharedCacheStore;
  /** How long an answer is served, in ms, unless `store` is given another. */
  readonly ttlMs: number;
  /** A shared-tier read slower than this counts as a miss (the read goes on, unawaited). @default 50 */
  readonly sharedTimeoutMs?: number;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** Told about every shared-tier failure or timeout; the cache itself degrades to a miss and goes on. */
  readonly onSharedError?: (operation: 'get' | 'put', error: unknown) => void;
}

const TIMED_OUT = Symbol('timed out');

/**
 * The two tiers in front of the model: memory first, then the shared store, whose hits warm memory.
 * Nothing the shared store does (fail, hang, vanish) reaches the caller: it is a miss, reported once to
 * `onSharedError`.
 */
export class TieredPredictionCache {
  private readonly now: () => number;

  constructor(private readonly options: TieredCacheOptions) {
    if (!(Number.isFinite(options.ttlMs) && options.ttlMs > 0)) throw new RangeError(`ttlMs: must be above 0; got ${options.ttlMs}`);
    this.now = options.now ?? Date.now;
  }

  async lookup(key: string): Promise<{ readonly entry: CachedPrediction; readonly tier: CacheTier } | undefined> {
    const now = this.now();
    const local = this.options.memory.get(key, now);
    if (local !== undefined) return { entry: local, tier: 'memory' };
    const shared = this.options.shared;
    if (shared === undefined) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = shared.get(key);
      const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), this.options.sharedTimeoutMs ?? 50);
      });
      const found = await Promise.race([read, timeout]);
      if (found === TIMED_OUT) {
        read.catch(() => undefined);
        this.options.onSharedError?.('get', new Error(`the shared cache did not answer within ${this.options.sharedTimeoutMs ?? 50} ms`));
        return undefined;
      }
      if (found === undefined || found.expiresAt <= this.now()) return undefined;
      this.options.memory.set(key, found, entryBytes(key, found), found.expiresAt);
      return { entry: found, tier: 'shared' };
    } catch (error) {
      this.options.onSharedError?.('get', error);
      return undefined;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /** Keeps an answer in both tiers; returns the entry stored. A shared-tier failure is reported, not thrown. */
  async store(key: string, answer: Omit<CachedPrediction, 'cachedAt' | 'expiresAt'>, ttlMs = this.options.ttlMs): Promise<CachedPrediction | undefined> {
    if (!cacheableAnswer(answer)) return undefined;
    const cachedAt = this.now();
    const entry: CachedPrediction = { ...answer, cachedAt, expiresAt: cachedAt + ttlMs };
    this.options.memory.set(key, entry, entryBytes(key, entry), entry.expiresAt);
    if (this.options.shared !== undefined) {
      try {
        await this.options.shared.put(key, entry);
      } catch (error) {
        this.options.onSharedError?.('put', error);
      }
    }
    return entry;
  }
}
