import type { AgentConfig } from '../config/schema.js';
import { AgentError, errorLines } from '../errors.js';
import type { ResolvedModel } from '../inference/model-files.js';
import type { Logger } from '../log/logger.js';
import { applyReload } from './config-reload.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import type { ServiceRunner } from './runner.js';
import { createNotifier, type Notifier } from './sd-notify.js';
import { ShutdownController } from './shutdown.js';

/** The running agent as the process sees it (agent/daemon.ts builds it). */
export interface ProcessAgent {
  runner: ServiceRunner;
  model: ResolvedModel;
  databaseFile: string;
  isAlive(maxSilenceMs: number): boolean;
  swapModel(resolved: ResolvedModel, trigger: 'sighup'): Promise<unknown>;
  haltInference(): Promise<void>;
  reconfigureCameras(cameras: AgentConfig['cameras']): Promise<{ added: string[]; removed: string[]; restarted: string[] }>;
}

export interface CheckedConfig {
  config: AgentConfig;
  model: ResolvedModel;
  secrets: string[];
}

export interface AgentProcessDeps {
  /** The config already loaded and checked (its errors exit with 2 before anything starts). */
  initial: CheckedConfig;
  /** Loads and checks the config again (SIGHUP). */
  reload: () => CheckedConfig;
  build: (config: AgentConfig, model: ResolvedModel, log: Logger) => ProcessAgent;
  /** Settles the model to start with when that takes measuring (model.manifest "auto"); default: the checked one. */
  chooseModel?: (config: AgentConfig, model: ResolvedModel, log: Logger) => Promise<ResolvedModel>;
  log: Logger;
  /** Secrets found on reload are masked in the log from then on. */
  addSecret: (secret: string) => void;
  /** Where startup errors go for a person (stderr). */
  report: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** The process to listen to (signals); tests hand in an EventEmitter. */
  signals?: Pick<NodeJS.Process, 'on' | 'off'>;
  notifier?: Notifier;
}

/**
 * The agent as a process: installs the shutdown controller before anything starts (a signal at
 * any moment takes the orderly path), builds and starts the agent, tells systemd it is ready,
 * pings the watchdog only while the pipeline lives, and applies SIGHUP reloads.
 */
export class AgentProcess {
  private agent: ProcessAgent | undefined;
  private startupFailed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly detach: Array<() => void> = [];
  private readonly startup = new AbortController();
  private readonly notifier: Notifier;
  private readonly signals: Pick<NodeJS.Process, 'on' | 'off'>;
  private readonly shutdown: ShutdownController;
  private running: AgentConfig;

  constructor(private readonly deps: AgentProcessDeps) {
    this.notifier = deps.notifier ?? createNotifier(deps.env, deps.log);
    this.signals = deps.signals ?? process;
    this.running = { ...deps.initial.config };
    this.shutdown = new ShutdownController({
      log: deps.log,
      timeoutMs: deps.initial.config.shutdown.timeoutMs,
      beforeExit: () => this.agent?.haltInference() ?? Promise.resolve(),
      cleanup: (reason) => this.cleanup(reason),
    });
  }

  private readonly hangupDuringStartup = (): void => this.deps.log.warn('SIGHUP during startup: ignored, send it again once running');

  /**
   * Takes over the signals: from here on SIGTERM, SIGINT and the fatal events take the orderly
   * path, and SIGHUP (whose default action would kill the process) is only noted until the agent
   * runs. Call it before anything that takes time, so no signal meets the default action.
   */
  install(): this {
    this.shutdown.install();
    this.listen('SIGHUP', this.hangupDuringStartup);
    return this;
  }

  /** Starts everything; resolves 'running' once serving (or once a failed start is being shut down). */
  async start(): Promise<'running'> {
    const { log, initial } = this.deps;
    try {
      const model = this.deps.chooseModel ? await this.deps.chooseModel(initial.config, initial.model, log) : initial.model;
      this.agent = this.deps.build(initial.config, model, log);
    } catch (error) {
      return this.failStartup(error);
    }
    try {
      await this.agent.runner.start(this.startup.signal);
    } catch (error) {
      if (error instanceof AgentError && error.code === 'STARTUP_ABORTED') return 'running'; // shutdown is under way
      log.error({ err: error }, 'startup failed');
      return this.failStartup(error);
    }
    const model = `${this.agent.model.manifest.id}@${this.agent.model.manifest.version}`;
    const cameras = initial.config.cameras.length;
    log.info({ model, database: this.agent.databaseFile, cameras }, 'cctv-agent running');
    this.notifier.ready(`running: ${cameras} camera(s), model ${model}`);
    this.startWatchdog(this.agent);
    this.signals.off('SIGHUP', this.hangupDuringStartup);
    this.listen('SIGHUP', () => {
      log.info('SIGHUP: reloading the config');
      void this.reload();
    });
    return 'running';
  }

  /** Re-reads the config and applies what can change live (cameras, model). */
  async reload(): Promise<void> {
    const agent = this.agent;
    if (!agent) return;
    try {
      const next = this.deps.reload();
      for (const secret of next.secrets) this.deps.addSecret(secret);
      const outcome = await applyReload(next, this.running, agent, this.deps.log);
      const { added, removed, restarted } = outcome.cameras;
      this.notifier.status(`reloaded: ${restarted.length} restarted, ${added.length} added, ${removed.length} removed`);
    } catch (error) {
      for (const line of errorLines(error)) this.deps.log.error({ problem: line }, 'config reload rejected: keeping the running config');
    }
  }

  private listen(signal: 'SIGHUP', handler: () => void): void {
    this.signals.on(signal, handler);
    this.detach.push(() => this.signals.off(signal, handler));
  }

  /** Pings systemd's watchdog only while the pipeline lives, so a hung pipeline trips it. */
  private startWatchdog(agent: ProcessAgent): void {
    const interval = this.notifier.watchdogIntervalMs;
    if (interval === undefined) return;
    this.timers.push(
      setInterval(() => {
        if (agent.isAlive(interval * 2)) this.notifier.watchdog();
      }, interval),
    );
  }

  private failStartup(error: unknown): 'running' {
    for (const line of errorLines(error)) this.deps.report(line);
    this.startupFailed = true;
    void this.shutdown.trigger('startup-failed');
    return 'running';
  }

  private async cleanup(reason: string): Promise<ExitCodeValue> {
    this.startup.abort();
    for (const timer of this.timers) clearInterval(timer);
    for (const undo of this.detach) undo();
    this.notifier.stopping(`stopping: ${reason}`);
    const report = this.agent ? await this.agent.runner.stop() : { failed: [] };
    this.notifier.close();
    this.deps.log.info({ reason, failedToStop: report.failed }, 'cctv-agent stopped');
    if (report.failed.length > 0) return ExitCode.SHUTDOWN_INCOMPLETE;
    return this.startupFailed ? ExitCode.STARTUP : ExitCode.OK;
  }
}
