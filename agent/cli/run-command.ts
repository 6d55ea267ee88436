import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import type { LoadOptions } from '../config/load.js';
import { SecretScrubber } from '../config/redact.js';
import type { AgentConfig } from '../config/schema.js';
import { buildAgent, type Agent } from '../daemon.js';
import { AgentError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../lifecycle/exit-codes.js';
import { createNotifier } from '../lifecycle/sd-notify.js';
import { ShutdownController } from '../lifecycle/shutdown.js';
import { createLogger } from '../log/logger.js';
import { formatStatusLine } from '../telemetry/status-line.js';
import { loadAndCheck } from './config-command.js';
import { demoBaseConfig, writeDemoConfig } from './demo-config.js';
import type { CliIo } from './io.js';
import { formatCliError } from './report-error.js';

/**
 * `cctv-agent run` and `cctv-agent demo`: load and check the config (exit 2 on any problem),
 * build the agent, start it under the shutdown controller, and report on a terminal.
 */
export async function runCommand(argv: string[], io: CliIo, mode: 'run' | 'demo'): Promise<number | 'running'> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const options: LoadOptions = { env: io.env, ...(values.config ? { file: values.config } : {}) };
  if (mode === 'demo') Object.assign(options, { base: demoBaseConfig(), requireFile: false });

  let loaded: ReturnType<typeof loadAndCheck>;
  const scrubber = new SecretScrubber();
  try {
    loaded = loadAndCheck(options);
  } catch (error) {
    for (const line of formatCliError(error)) io.err.write(`${scrubber.scrub(line)}\n`);
    return ExitCode.CONFIG;
  }
  const { config } = loaded;
  for (const secret of loaded.secrets) scrubber.add(secret);
  const log = createLogger({ level: config.log.level, scrubber });
  if (mode === 'demo') {
    const written = writeDemoConfig(loaded.source, demoBaseConfig());
    if (written) log.info({ file: written }, 'demo config written: cctv-agent status, telemetry and config print find the demo\'s data through it');
  }
  const notifier = createNotifier(io.env, log);
  const startup = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const detach: Array<() => void> = [];
  let agent: Agent | undefined;
  let startupFailed = false;
  // Installed before anything starts: a signal at any later moment takes the orderly path.
  const shutdown = new ShutdownController({
    log,
    timeoutMs: config.shutdown.timeoutMs,
    beforeExit: () => agent?.haltInference() ?? Promise.resolve(),
    cleanup: async (reason): Promise<ExitCodeValue> => {
      startup.abort();
      for (const timer of timers) clearInterval(timer);
      for (const undo of detach) undo();
      notifier.stopping(`stopping: ${reason}`);
      const report = agent ? await agent.runner.stop() : { failed: [] };
      notifier.close();
      log.info({ reason, failedToStop: report.failed }, 'cctv-agent stopped');
      if (report.failed.length > 0) return ExitCode.SHUTDOWN_INCOMPLETE;
      return startupFailed ? ExitCode.STARTUP : ExitCode.OK;
    },
  }).install();
  // SIGHUP's default action would kill the process: until the agent runs, it is only noted.
  const hangupDuringStartup = (): void => log.warn('SIGHUP during startup: ignored, send it again once running');
  process.on('SIGHUP', hangupDuringStartup);
  detach.push(() => process.off('SIGHUP', hangupDuringStartup));
  log.info({ configFile: loaded.source, envOverrides: loaded.envApplied, deviceId: config.deviceId, mode }, 'cctv-agent starting');
  if (process.platform === 'linux' && io.env['MALLOC_MMAP_THRESHOLD_'] === undefined) {
    // glibc reads these only at process start: the unit and the demo script set them.
    log.warn({ fix: 'MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 (see docs/operations.md)' }, 'memory may grow by tens of MB over model swaps: glibc malloc tuning is not set');
  }

  try {
    agent = buildAgent(config, loaded.model, log);
  } catch (error) {
    for (const line of formatCliError(error)) io.err.write(`${scrubber.scrub(line)}\n`);
    startupFailed = true;
    void shutdown.trigger('startup-failed');
    return 'running';
  }
  const started = agent;

  try {
    await started.runner.start(startup.signal);
  } catch (error) {
    if (error instanceof AgentError && error.code === 'STARTUP_ABORTED') return 'running'; // shutdown is under way
    startupFailed = true;
    for (const line of formatCliError(error)) io.err.write(`${scrubber.scrub(line)}\n`);
    log.error({ err: error }, 'startup failed');
    void shutdown.trigger('startup-failed');
    return 'running';
  }

  const model = `${started.model.manifest.id}@${started.model.manifest.version}`;
  log.info({ model, database: started.databaseFile, cameras: config.cameras.length }, 'cctv-agent running');
  notifier.ready(`running: ${config.cameras.length} camera(s), model ${model}`);
  if (notifier.watchdogIntervalMs !== undefined) {
    const interval = notifier.watchdogIntervalMs;
    // Pings only while the pipeline lives, so a hung pipeline trips systemd's watchdog.
    timers.push(setInterval(() => {
      if (started.isAlive(interval * 2)) notifier.watchdog();
    }, interval));
  }
  // SIGHUP (systemctl reload): re-read the config and restart only the cameras that changed.
  const running: AgentConfig = { ...config };
  const reload = async (): Promise<void> => {
    try {
      const next = loadAndCheck(options);
      for (const secret of next.secrets) scrubber.add(secret);
      const live: ReadonlyArray<keyof AgentConfig> = ['cameras', 'model'];
      const needRestart = Object.keys(next.config).filter((key) => !live.includes(key as keyof AgentConfig) && !isDeepStrictEqual(next.config[key as keyof AgentConfig], running[key as keyof AgentConfig]));
      if (needRestart.length > 0) log.warn({ keys: needRestart }, 'config reloaded: these changes take effect at the next restart');
      if (!isDeepStrictEqual(next.config.model, running.model)) {
        try {
          await started.swapModel(next.model);
          running.model = next.config.model;
        } catch (error) {
          for (const line of formatCliError(error)) log.error({ problem: line }, 'model swap refused: keeping the running model');
        }
      }
      const outcome = await started.reconfigureCameras(next.config.cameras);
      running.cameras = next.config.cameras;
      notifier.status(`reloaded: ${outcome.restarted.length} restarted, ${outcome.added.length} added, ${outcome.removed.length} removed`);
    } catch (error) {
      for (const line of formatCliError(error)) log.error({ problem: line }, 'config reload rejected: keeping the running config');
    }
  };
  const onHangup = (): void => {
    log.info('SIGHUP: reloading the config');
    void reload();
  };
  process.on('SIGHUP', onHangup);
  process.off('SIGHUP', hangupDuringStartup);
  detach.push(() => process.off('SIGHUP', onHangup));

  if (io.err.isTTY) {
    started.stats.takeWindow();
    timers.push(setInterval(() => {
      io.err.write(`${formatStatusLine({ window: started.stats.takeWindow(), ...started.status() })}\n`);
    }, config.status.intervalSeconds * 1000));
  }
  return 'running';
}
