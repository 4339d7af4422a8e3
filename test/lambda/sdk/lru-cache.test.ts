// The bundles' stand-in for mnemonist's LRUCache behaves as mnemonist does for the calls the SDK's
// endpoint cache makes: the same answers to the same sequence of get, set, has, peek and clear.
import fc from 'fast-check';
import MnemonistLru from 'mnemonist/lru-cache';
import LRUCache from '../../../lambda/sdk/lru-cache';

type Op = { op: 'get' | 'has' | 'peek'; key: string } | { op: 'set'; key: string; value: number } | { op: 'clear' };

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g');
const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constantFrom('get' as const, 'has' as const, 'peek' as const), key }),
    fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }),
    fc.constant({ op: 'clear' as const }),
  ),
  { maxLength: 60 },
);

test('answers every sequence of calls as mnemonist does, at any capacity', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), ops, (capacity, sequence: Op[]) => {
      const ours = new LRUCache<number>(capacity);
      const theirs = new MnemonistLru<string, number>(capacity);
      for (const step of sequence) {
        if (step.op === 'set') {
          ours.set(step.key, step.value);
          theirs.set(step.key, step.value);
        } else if (step.op === 'clear') {
          ours.clear();
          theirs.clear();
        } else {
          expect(ours[step.op](step.key)).toEqual(theirs[step.op](step.key));
        }
        expect(ours.size).toBe(theirs.size);
      }
    }),
    { numRuns: 500 },
  );
});

test('drops the least recently used key when full; get makes a key recently used, peek and has do not', () => {
  const cache = new LRUCache<number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  cache.peek('a');
  cache.has('a');
  cache.set('c', 3);
  expect([cache.has('a'), cache.has('b'), cache.has('c')]).toEqual([false, true, true]);
  cache.get('b');
  cache.set('d', 4);
  expect([cache.has('b'), cache.has('c'), cache.has('d')]).toEqual([true, false, true]);
});

test('refuses a capacity that is not a positive number, as mnemonist does', () => {
  for (const capacity of [0, -1, '3' as unknown as number]) {
    expect(() => new LRUCache(capacity)).toThrow('capacity should be positive number');
  }
});
