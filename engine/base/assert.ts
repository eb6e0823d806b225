/**
 * Assertions are for what must never happen (a broken invariant, a bug). They throw an
 * AssertionError that nothing catches on purpose: continuing would risk the data on disk.
 * Errors that users can cause are EngineErrors (errors.ts), never assertions.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertSafeOffset(n: number, what = 'offset'): void {
  assert(Number.isSafeInteger(n) && n >= 0, `${what} must be a non-negative safe integer, got ${n}`);
}
