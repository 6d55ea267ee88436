#!/usr/bin/env node
import { ExitCode } from '../lifecycle/exit-codes.js';
import { main } from './main.js';

const outcome = await main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`cctv-agent: INTERNAL: ${error instanceof Error ? error.stack : String(error)}\n`);
  return ExitCode.FATAL;
});
// A running agent exits through its shutdown controller; a command that finished sets the code.
if (outcome !== 'running') process.exitCode = outcome;
