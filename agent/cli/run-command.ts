import { parseArgs } from 'node:util';
import type { LoadOptions } from '../config/load.js';
import { SecretScrubber } from '../config/redact.js';
import { buildAgent } from '../daemon.js';
import { errorLines } from '../errors.js';
import { chooseAutoModel } from '../inference/model-choice.js';
import { AgentProcess } from '../lifecycle/agent-process.js';
import { applyHeapGrowth } from '../lifecycle/heap-growth.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { createLogger } from '../log/logger.js';
import { loadAndCheck } from './config-command.js';
import { demoBaseConfig, writeDemoConfig } from './demo-config.js';
import type { CliIo } from './io.js';

/**
 * `cctv-agent run` and `cctv-agent demo`: load and check the config (exit 2 on any problem),
 * then hand the process to AgentProcess (signals, start, watchdog, reload).
 */
export async function runCommand(argv: string[], io: CliIo, mode: 'run' | 'demo'): Promise<number | 'running'> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const options: LoadOptions = { env: io.env, ...(values.config ? { file: values.config } : {}) };
  if (mode === 'demo') Object.assign(options, { base: demoBaseConfig(), requireFile: false });
  const scrubber = new SecretScrubber();
  let initial: ReturnType<typeof loadAndCheck>;
  try {
    initial = loadAndCheck(options);
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${scrubber.scrub(line)}\n`);
    return ExitCode.CONFIG;
  }
  const { config } = initial;
  for (const secret of initial.secrets) scrubber.add(secret);
  const log = createLogger({ level: config.log.level, scrubber });
  // Once, at start: a reload does not change how the heap grows (docs/configuration.md).
  applyHeapGrowth(config.runtime.heapGrowingPercent);
  const agentProcess = new AgentProcess({
    initial,
    reload: () => loadAndCheck(options),
    build: (next, model, agentLog) => buildAgent(next, model, agentLog, io.err.isTTY ? { terminal: io.err } : {}),
    chooseModel: (next, model, agentLog) =>
      next.model.manifest === 'auto'
        ? chooseAutoModel(model, {
            ...(next.model.assetsDir ? { assetsDir: next.model.assetsDir } : {}),
            minAgreement: next.model.autoMinAgreement,
            settings: next.inference,
            log: agentLog.child({ module: 'inference' }),
          })
        : Promise.resolve(model),
    log,
    addSecret: (secret) => scrubber.add(secret),
    report: (line) => io.err.write(`${scrubber.scrub(line)}\n`),
    env: io.env,
  }).install();
  log.info(
    { configFile: initial.source, envOverrides: initial.envApplied, deviceId: config.deviceId, mode, heapGrowingPercent: config.runtime.heapGrowingPercent },
    'cctv-agent starting',
  );
  if (mode === 'demo') {
    const written = writeDemoConfig(initial.source, demoBaseConfig());
    if (written) log.info({ file: written }, "demo config written: cctv-agent status, telemetry and config print find the demo's data through it");
  }
  if (process.platform === 'linux' && io.env['MALLOC_MMAP_THRESHOLD_'] === undefined) {
    // glibc reads these only at process start: the unit and the demo script set them.
    log.warn(
      { fix: 'MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 (see docs/operations.md)' },
      'memory may grow by tens of MB over model swaps: glibc malloc tuning is not set',
    );
  }
  return agentProcess.start();
}
