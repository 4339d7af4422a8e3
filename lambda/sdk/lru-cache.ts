// What the Lambda bundles use in place of mnemonist's LRUCache (scripts/build-lambdas.mjs aliases
// `mnemonist/lru-cache` to this file; tests that run a handler from source still get mnemonist).
//
// Its only user in the bundles is @aws-sdk/endpoint-cache, which every DynamoDB client constructs for
// endpoint discovery (used only with AWS_ENDPOINT_DISCOVERY_ENABLED): it calls `new LRUCache(capacity)`,
// `get`, `set`, `has`, `peek` and `clear`, with string keys. mnemonist's typed-array lists and the iterator
// helpers they bring are about 7 KiB of every bundle with a DynamoDB client; a Map, which keeps insertion
// order, is an LRU of the same behaviour for those calls (test/lambda/sdk/lru-cache.test.ts runs both).

export default class LRUCache<V = unknown> {
  private readonly items = new Map<string, V>();
  public readonly capacity: number;

  constructor(capacity: number) {
    if (typeof capacity !== 'number' || !(capacity > 0)) throw new Error('mnemonist/lru-cache: capacity should be positive number.');
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.size;
  }

  /** Whether the key is cached; does not make it recently used. */
  has(key: string): boolean {
    return this.items.has(String(key));
  }

  /** The value, without making it recently used. */
  peek(key: string): V | undefined {
    return this.items.get(String(key));
  }

  /** The value, made the most recently used. */
  get(key: string): V | undefined {
    const name = String(key);
    if (!this.items.has(name)) return undefined;
    const value = this.items.get(name) as V;
    this.items.delete(name);
    this.items.set(name, value);
    return value;
  }

  /** Stores the value as the most recently used, dropping the least recently used one when full. */
  set(key: string, value: V): void {
    const name = String(key);
    if (this.items.has(name)) {
      this.items.delete(name);
    } else if (this.items.size >= this.capacity) {
      const oldest = this.items.keys().next();
      if (oldest.done !== true) this.items.delete(oldest.value);
    }
    this.items.set(name, value);
  }

  clear(): void {
    this.items.clear();
  }
}
