/** The process's streams and environment, passed in so commands can be tested in-process. */
export interface CliIo {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export const processIo: CliIo = { out: process.stdout, err: process.stderr, env: process.env };
