// Where the inference handlers find a model's route: one SSM parameter per model family,
// `<prefix><model>`, written by the stack that owns the family's endpoint.
//
// A routing table in one environment variable stops at Lambda's 4 KB limit (about 20 families),
// and it ties every family's deploy to the API's. A parameter per family keeps both apart: the
// family's stack writes its route, the API reads it on first use and keeps it for a TTL. The read
// cost on the request path is one GetParameter per family per execution environment per TTL;
// every other request is served from memory, and a failed refresh keeps serving the last route.
//
// Nothing here talks to AWS: the handler passes a RouteStore that calls SSM.
import { ConfigError, formatIssues, parseRouteEntry, UpstreamError, type RouteEntry, type RouteSource } from './inference';

/** Model (family) names the platform accepts; anything else is unknown without a lookup. */
export const ROUTE_MODEL_NAME_PATTERN = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

/** The raw route of one model, or `undefined` when the store has none. Throws when the store cannot be read. */
export interface RouteStore {
  read(model: string): Promise<string | undefined>;
  /** Where a model's route lives, for error messages (e.g. the SSM parameter name). */
  describe(model: string): string;
}

export interface RouteCacheOptions {
  /** How long a route read from the store is served before it is read again. */
  readonly ttlMs: number;
  /** How long "no such model" is remembered, so that a caller repeating a bad name costs no reads. */
  readonly negativeTtlMs: number;
  /** At most this many models are remembered; the least recently refreshed go first. @default 1000 */
  readonly maxEntries?: number;
  /** Milliseconds clock; defaults to Date.now. */
  readonly now?: () => number;
  /** Fraction of the TTL by which each entry's expiry is shortened at random, so that environments do not refresh in step. @default 0.1 */
  readonly jitter?: number;
  readonly random?: () => number;
  /**
   * After a failed refresh the last good route is served for this long before the store is tried
   * again, so that an outage (or a store answering slowly) costs one failed read per model per
   * environment per interval, not one per request. @default min(ttlMs, 5000)
   */
  readonly staleRetryMs?: number;
  /** Told when a refresh failed and the last good route was served instead. */
  readonly onStale?: (model: string, error: unknown) => void;
}

type Entry =
  | { readonly kind: 'route'; readonly route: RouteEntry; readonly expires: number }
  | { readonly kind: 'missing'; readonly expires: number }
  | { readonly kind: 'invalid'; readonly error: ConfigError; readonly expires: number };

/**
 * Routes read from a {@link RouteStore} and kept in memory. Concurrent requests for a model whose
 * entry expired share one read. A route that fails validation is a configuration error (500,
 * naming where it lives and the field); a store that cannot be read is a 503 unless a route read
 * before can still be served.
 */
export class RouteCache implements RouteSource {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Entry>>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly maxEntries: number;

  constructor(
    private readonly store: RouteStore,
    private readonly options: RouteCacheOptions,
  ) {
    for (const [name, value] of [['ttlMs', options.ttlMs], ['negativeTtlMs', options.negativeTtlMs], ['staleRetryMs', options.staleRetryMs ?? 0]] as const) {
      if (!(Number.isFinite(value) && value >= 0)) throw new Error(`RouteCache: ${name}: must be a number >= 0; got ${value}`);
    }
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.maxEntries = options.maxEntries ?? 1000;
  }

  async route(model: string): Promise<RouteEntry | undefined> {
    // A name the platform could never have written is unknown: no read, and nothing remembered.
    if (!ROUTE_MODEL_NAME_PATTERN.test(model)) return undefined;
    const cached = this.entries.get(model);
    const entry = cached !== undefined && cached.expires > this.now() ? cached : await this.refresh(model, cached);
    switch (entry.kind) {
      case 'route':
        return entry.route;
      case 'missing':
        return undefined;
      case 'invalid':
        throw entry.error;
    }
  }

  private refresh(model: string, previous: Entry | undefined): Promise<Entry> {
    const pending = this.inFlight.get(model);
    if (pending) return pending;
    const read = this.read(model, previous).finally(() => this.inFlight.delete(model));
    this.inFlight.set(model, read);
    return read;
  }

  private async read(model: string, previous: Entry | undefined): Promise<Entry> {
    let raw: string | undefined;
    try {
      raw = await this.store.read(model);
    } catch (error) {
      if (previous?.kind === 'route') {
        this.options.onStale?.(model, error);
        const stale = { ...previous, expires: this.now() + (this.options.staleRetryMs ?? Math.min(this.options.ttlMs, 5_000)) };
        this.remember(model, stale);
        return stale;
      }
      throw new UpstreamError(503, 'RoutingUnavailable', `model: the route of ${JSON.stringify(model)} could not be read; retry`, { cause: error });
    }
    const entry = raw === undefined ? { kind: 'missing' as const, expires: this.expiry(this.options.negativeTtlMs) } : this.parse(model, raw);
    this.remember(model, entry);
    return entry;
  }

  private parse(model: string, raw: string): Entry {
    const where = this.store.describe(model);
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { kind: 'invalid', error: new ConfigError(`route of ${JSON.stringify(model)} (${where}): is not valid JSON`), expires: this.expiry(this.options.negativeTtlMs) };
    }
    const result = parseRouteEntry(json);
    if (!result.success) {
      const error = new ConfigError(`route of ${JSON.stringify(model)} (${where}): ${formatIssues(result.issues, '(root)')}`);
      return { kind: 'invalid', error, expires: this.expiry(this.options.negativeTtlMs) };
    }
    return { kind: 'route', route: result.data, expires: this.expiry(this.options.ttlMs) };
  }

  private expiry(ttlMs: number): number {
    const jitter = Math.min(Math.max(this.options.jitter ?? 0.1, 0), 1);
    return this.now() + ttlMs * (1 - jitter * this.random());
  }

  private remember(model: string, entry: Entry): void {
    this.entries.delete(model);
    this.entries.set(model, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/** `ROUTE_CACHE_TTL_SECONDS`-style setting: a whole number of seconds >= 0, or the default when unset. */
export function parseTtlSeconds(raw: string | undefined, name: string, defaultSeconds: number): number {
  if (raw === undefined || raw.trim() === '') return defaultSeconds;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 86_400) {
    throw new ConfigError(`${name}: must be a whole number of seconds from 0 to 86400; got ${JSON.stringify(raw)}`);
  }
  return value;
}
