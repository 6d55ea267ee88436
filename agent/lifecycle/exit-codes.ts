/** Process exit codes; docs/operations.md lists the same table. */
export const ExitCode = {
  OK: 0,
  /** An uncaught exception or unhandled rejection ended the run (after a clean shutdown). */
  FATAL: 1,
  /** Bad config or command line: nothing was started. */
  CONFIG: 2,
  /** A subsystem failed to start; the ones already started were stopped. */
  STARTUP: 3,
  /** Shutdown did not complete: a subsystem failed to stop or the deadline passed. */
  SHUTDOWN_INCOMPLETE: 4,
  /** A second SIGINT/SIGTERM during shutdown: exit at once. */
  FORCED: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
