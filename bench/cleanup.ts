/**
 * Cleanups a benchmark registers (brokers, servers, temp dirs), run in reverse order at the
 * end or on SIGINT/SIGTERM, so an interrupted benchmark leaves no process behind.
 */
export class BenchCleanup {
  private readonly cleanups = new Set<() => Promise<unknown> | unknown>();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    console.error(`\n${signal}: ${this.what}...`);
    void this.runAll().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };

  constructor(private readonly what: string) {}

  add(cleanup: () => Promise<unknown> | unknown): void {
    this.cleanups.add(cleanup);
  }

  delete(cleanup: () => Promise<unknown> | unknown): void {
    this.cleanups.delete(cleanup);
  }

  installSignalHandlers(): void {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  async runAll(): Promise<void> {
    for (const cleanup of [...this.cleanups].reverse()) {
      this.cleanups.delete(cleanup);
      try {
        await cleanup();
      } catch (error) {
        console.error(`cleanup failed: ${String(error)}`);
      }
    }
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }
}

/** Runs a benchmark's main, prints its failure, and always runs the cleanups. */
export async function runBenchmark(main: () => Promise<void>, cleanups: BenchCleanup): Promise<void> {
  try {
    await main();
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  } finally {
    await cleanups.runAll();
  }
}
