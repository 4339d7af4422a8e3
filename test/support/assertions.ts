/** Small assertion helpers shared by the handler and pure-logic tests. */

/** Runs fn and returns what it threw; fails the test when it throws nothing. */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the function to throw');
}

/** Every number reachable from value is finite (no NaN, no Infinity); null is allowed. */
export function expectAllFinite(value: unknown, path = '$'): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new Error(`${path} is ${value}`);
    }
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => expectAllFinite(item, `${path}[${index}]`));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      expectAllFinite(item, `${path}.${key}`);
    }
  }
}

/** The lines of the message `build` throws (a construct's `invalid props` list, one problem a line); fails when it does not throw. */
export function thrownLines(build: () => unknown): string[] {
  return (catchError(build) as Error).message.split('\n');
}
