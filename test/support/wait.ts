/**
 * The tests' one way to wait for something real (a process, a broker, a file): polls `check`
 * until it returns a value other than undefined or false, and returns that value; throws,
 * saying what it waited for, after `timeoutMs`. Pure timing logic is tested with fake timers
 * instead (test/**\/*.unit.test.ts).
 */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string | (() => string) = 'a condition',
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
