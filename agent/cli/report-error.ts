import { ConfigError } from '../config/load.js';
import { AgentError, errorMessage } from '../errors.js';

/** One line per problem, for a person: `cctv-agent: CODE: key.path: what is wrong (fix: ...)`. */
export function formatCliError(error: unknown): string[] {
  if (error instanceof ConfigError) return error.problems.map((problem) => `cctv-agent: ${error.code}: ${problem}`);
  if (error instanceof AgentError) return [`cctv-agent: ${error.code}: ${error.message} (fix: ${error.fix})`];
  return [`cctv-agent: INTERNAL: ${errorMessage(error)}`];
}
