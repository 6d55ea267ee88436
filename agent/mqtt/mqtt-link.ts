import fs from 'node:fs';
import mqtt, { type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { redactUrl } from '../config/redact.js';
import type { MqttConfig } from '../config/schema.js';
import { AgentError, errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { RetryBackoff } from '../common/backoff.js';
import { classifyConnectFailure, describeFailure, type ConnectFailure, type LinkFailureState } from './connect-failure.js';
import { topicMatches } from './topics.js';

export type LinkState = 'connecting' | 'connected' | LinkFailureState | 'stopped';

/** A message received on one of the link's subscriptions. */
export interface IncomingMessage {
  topic: string;
  payload: Buffer;
  /** Set only for a retained message delivered because we subscribed (a stale one). */
  retain: boolean;
  /** MQTT 5 request/response properties; never set on 3.1.1. */
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface MqttLinkDeps {
  /** A thunk: the embedded broker's URL is known only once it listens. */
  url: () => string;
  config: MqttConfig;
  clientId: string;
  availabilityTopic: string;
  log: Logger;
  /** The jitter's randomness (tests fix it). */
  random?: () => number;
}

/** How long start() waits for the first connection before going on without it. */
const FIRST_CONNECT_WAIT_MS = 3000;
const OFFLINE_PUBLISH_WAIT_MS = 1000;
const END_WAIT_MS = 1000;
/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_CONNECTION_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The one broker connection: MQTT 5 with fallback to 3.1.1, TLS and credentials, a retained
 * availability topic with a last will, subscriptions that survive reconnects, and reconnects
 * with exponential backoff and jitter.
 *
 * mqtt.js's own reconnect is off (reconnectPeriod 0): it retries at a fixed period and stops
 * for good after a refused CONNACK. Instead each attempt is a fresh mqtt.js client, built with
 * the protocol version of the moment, so a fallback to 3.1.1 needs no surgery on a live
 * client; and ending the old client fails every publish still waiting for its PUBACK, so the
 * outbox drain knows to resend from there instead of waiting forever.
 */
export class MqttLink implements Service {
  readonly name = 'mqtt';
  private client: MqttClient | undefined;
  private protocolVersion: 4 | 5;
  private current: LinkState = 'connecting';
  private since = Date.now();
  private failure: ConnectFailure | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number | undefined;
  private nextRetryAt: number | undefined;
  private stopping = false;
  private attempts = 0;
  private connects = 0;
  private connectedAt = 0;
  private baseOptions: IClientOptions | undefined;
  private readonly backoff: RetryBackoff;
  private readonly connectListeners = new Set<() => void>();
  private readonly stateListeners = new Set<(state: LinkState) => void>();
  private readonly subscriptions = new Map<string, (message: IncomingMessage) => void>();
  private subscribeError: string | undefined;
  private loggedFailure: string | undefined;

  constructor(private readonly deps: MqttLinkDeps) {
    this.protocolVersion = deps.config.protocol === '3.1.1' ? 4 : 5;
    // Never sooner than reconnectMs: a broker gets at least that long between attempts.
    this.backoff = new RetryBackoff(
      deps.config.reconnectMs,
      Math.max(deps.config.reconnectMs, deps.config.reconnectMaxMs),
      STABLE_CONNECTION_MS,
      deps.random,
      deps.config.reconnectMs,
    );
  }

  get connected(): boolean {
    return this.client?.connected === true;
  }

  get state(): LinkState {
    return this.current;
  }

  /** The protocol of the current (or next) connection. */
  get protocol(): '5' | '3.1.1' {
    return this.protocolVersion === 5 ? '5' : '3.1.1';
  }

  onConnect(listener: () => void): void {
    this.connectListeners.add(listener);
  }

  onStateChange(listener: (state: LinkState) => void): void {
    this.stateListeners.add(listener);
  }

  /** QoS 1 subscription, made again on every connection (the session is clean). */
  subscribe(filter: string, listener: (message: IncomingMessage) => void): void {
    this.subscriptions.set(filter, listener);
    if (this.client?.connected) this.subscribeOn(this.client, filter);
  }

  private readFile(key: 'caFile' | 'certFile' | 'keyFile', file: string): Buffer {
    try {
      return fs.readFileSync(file);
    } catch (error) {
      throw new AgentError('MQTT_TLS_FAILED', `mqtt.tls.${key}: cannot read ${file}: ${errorMessage(error)}`, { cause: error });
    }
  }

  private buildOptions(): IClientOptions {
    const { config, clientId, availabilityTopic } = this.deps;
    const options: IClientOptions = {
      clientId,
      keepalive: config.keepaliveSeconds,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      clean: true,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: availabilityTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    if (config.username !== undefined) options.username = config.username;
    if (config.password !== undefined) options.password = config.password;
    if (config.tls) {
      if (config.tls.caFile) options.ca = this.readFile('caFile', config.tls.caFile);
      if (config.tls.certFile) options.cert = this.readFile('certFile', config.tls.certFile);
      if (config.tls.keyFile) options.key = this.readFile('keyFile', config.tls.keyFile);
      options.rejectUnauthorized = config.tls.rejectUnauthorized;
    }
    return options;
  }

  async start(signal: AbortSignal): Promise<void> {
    this.baseOptions = this.buildOptions();
    this.stopping = false;
    this.connect();
    // Wait for the first outcome (or at most a few seconds): a refused login is known at once.
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.stateListeners.delete(onState);
        resolve();
      };
      const onState = (state: LinkState): void => {
        if (state !== 'connecting') done();
      };
      const timer = setTimeout(() => {
        this.deps.log.warn({ url: redactUrl(this.deps.url()), waitedMs: FIRST_CONNECT_WAIT_MS }, 'mqtt not connected yet: going on, the outbox keeps results');
        done();
      }, FIRST_CONNECT_WAIT_MS);
      this.stateListeners.add(onState);
      signal.addEventListener('abort', done);
    });
  }

  private connect(): void {
    this.retryTimer = undefined;
    this.nextRetryAt = undefined;
    if (this.stopping || !this.baseOptions) return;
    this.attempts++;
    const options: IClientOptions = { ...this.baseOptions, protocolVersion: this.protocolVersion };
    if (this.protocolVersion === 5) {
      // The broker sends us commands only: refuse absurd packets before they reach memory.
      // Larger ones are dropped by the broker (no reply); up to here they get COMMAND_TOO_LARGE.
      options.properties = { maximumPacketSize: Math.max(1_048_576, 4 * this.deps.config.commands.maxPayloadBytes) };
    }
    let client: MqttClient;
    try {
      client = mqtt.connect(this.deps.url(), options);
    } catch (error) {
      // A URL mqtt.js cannot use (the config check lets only valid ones through): retry later
      // like any failure rather than throw from a timer and take the process down.
      this.failure = classifyConnectFailure(error);
      this.scheduleRetry(this.backoff.next());
      this.setState(this.failure.state, { err: describeFailure(this.failure) });
      return;
    }
    this.client = client;
    let lastError: unknown;
    let connected = false;
    client.on('connect', () => {
      connected = true;
      this.onConnected(client);
    });
    client.on('error', (error) => {
      lastError = error;
    });
    // MQTT 5: the broker says why it closes (session taken over, server shutting down, ...).
    client.on('disconnect', (packet) => {
      const reasonCode = packet.reasonCode ?? 0;
      lastError = Object.assign(new Error(`disconnected by the broker (reason ${reasonCode})`), { code: reasonCode });
    });
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet));
    client.on('close', () => this.onClosed(client, connected, lastError));
  }

  private onConnected(client: MqttClient): void {
    if (client !== this.client) return;
    this.connects++;
    this.connectedAt = Date.now();
    this.failure = undefined;
    this.retryDelayMs = undefined;
    this.setState('connected', { url: redactUrl(this.deps.url()), protocol: this.protocol, reconnect: this.connects > 1 });
    client.publish(this.deps.availabilityTopic, 'online', { qos: 1, retain: true }, (error) => {
      if (error && client === this.client) this.deps.log.warn({ err: errorMessage(error) }, 'availability "online" not acknowledged');
    });
    for (const filter of this.subscriptions.keys()) this.subscribeOn(client, filter);
    for (const listener of this.connectListeners) listener();
  }

  private subscribeOn(client: MqttClient, filter: string): void {
    // MQTT 5: no retained commands at subscribe time (rh 2), never our own messages (nl).
    const options = this.protocolVersion === 5 ? { qos: 1 as const, nl: true, rh: 2 } : { qos: 1 as const };
    client.subscribe(filter, options, (error, granted) => {
      const refused = granted?.find((grant) => (grant.qos & 0x80) !== 0);
      const problem = error ? errorMessage(error) : refused ? `refused by the broker (reason ${refused.qos})` : undefined;
      if (problem !== undefined && problem !== this.subscribeError) this.deps.log.error({ filter, err: problem }, 'mqtt subscription failed');
      this.subscribeError = problem;
    });
  }

  private onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    for (const [filter, listener] of this.subscriptions) {
      if (!topicMatches(filter, topic)) continue;
      const message: IncomingMessage = { topic, payload, retain: packet.retain };
      const properties = packet.properties;
      if (properties?.responseTopic !== undefined) message.responseTopic = properties.responseTopic;
      if (properties?.correlationData !== undefined) message.correlationData = properties.correlationData;
      try {
        listener(message);
      } catch (error) {
        // A listener bug must not take the connection (or the process) down with it.
        this.deps.log.error({ err: errorMessage(error), filter }, 'mqtt message listener failed');
      }
    }
  }

  private onClosed(client: MqttClient, wasConnected: boolean, error: unknown): void {
    if (client !== this.client) return;
    this.client = undefined;
    // Fails every publish still waiting for its PUBACK, so the drain resends from there.
    client.end(true);
    if (this.stopping) return;
    let delay: number;
    if (wasConnected) {
      this.backoff.succeededFor(Date.now() - this.connectedAt);
      this.failure = error === undefined ? undefined : classifyConnectFailure(error);
      delay = this.backoff.next();
      this.setState('connecting', { err: this.failure ? describeFailure(this.failure) : 'connection closed', retryInMs: delay });
    } else {
      const failure = classifyConnectFailure(error);
      if (failure.protocolRefused && this.deps.config.protocol === 'auto' && this.protocolVersion === 5) {
        // Sticky for this process: the broker is not expected to learn MQTT 5 while we run.
        this.protocolVersion = 4;
        this.deps.log.warn({ reasonCode: failure.reasonCode }, 'the broker refuses MQTT 5: using MQTT 3.1.1 (no message expiry, no response topics)');
        delay = 0;
      } else {
        this.failure = failure;
        delay = this.backoff.next();
        this.setState(failure.state, { err: describeFailure(failure), retryInMs: delay });
      }
    }
    this.scheduleRetry(delay);
  }

  private scheduleRetry(delay: number): void {
    this.retryDelayMs = delay;
    this.nextRetryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Logs once per change of state (or of the failure's code within a state), never per retry. */
  private setState(next: LinkState, fields: Record<string, unknown>): void {
    const changed = next !== this.current;
    const previousFailure = this.loggedFailure;
    this.loggedFailure = this.failure ? describeFailureKey(this.failure) : undefined;
    if (!changed && previousFailure === this.loggedFailure) return;
    this.current = next;
    this.since = Date.now();
    const log = this.deps.log;
    if (next === 'connected') log.info(fields, 'mqtt connected');
    else if (next === 'stopped') log.info('mqtt link closed');
    else if (next === 'connecting') log.warn(fields, 'mqtt connection lost: retrying; results are kept in the outbox');
    else log.error({ ...fields, state: next, code: this.failure?.code }, `mqtt ${next}: retrying with backoff`);
    for (const listener of this.stateListeners) listener(next);
  }

  /** Resolves when the broker acknowledged (QoS 1), rejects when the link fails first. */
  async publish(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, expiresAt?: number | null): Promise<void> {
    const client = this.client;
    if (!client?.connected) throw new AgentError('MQTT_CONNECT_FAILED', 'mqtt not connected');
    const options: IClientPublishOptions = { qos, retain };
    if (client.options.protocolVersion === 5 && expiresAt !== undefined && expiresAt !== null) {
      // Whole seconds left, at least 1: a row that already expired never gets here (the drain drops it).
      options.properties = { messageExpiryInterval: Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000)) };
    }
    await client.publishAsync(topic, payload, options);
  }

  /** A command reply: QoS 1, not retained, with the request's correlation data on MQTT 5. */
  async reply(topic: string, payload: Buffer, correlationData?: Buffer): Promise<void> {
    const client = this.client;
    if (!client?.connected) throw new AgentError('MQTT_CONNECT_FAILED', 'mqtt not connected');
    const options: IClientPublishOptions = { qos: 1, retain: false };
    if (client.options.protocolVersion === 5) {
      options.properties = { contentType: 'application/json', payloadFormatIndicator: true, ...(correlationData ? { correlationData } : {}) };
    }
    await client.publishAsync(topic, payload, options);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextRetryAt = undefined;
    const client = this.client;
    this.client = undefined;
    if (client?.connected) {
      // An orderly stop says "offline" itself; the will covers only crashes.
      await Promise.race([
        client.publishAsync(this.deps.availabilityTopic, 'offline', { qos: 1, retain: true }).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, OFFLINE_PUBLISH_WAIT_MS)),
      ]);
    }
    if (client) await Promise.race([client.endAsync(true), new Promise((resolve) => setTimeout(resolve, END_WAIT_MS).unref())]);
    this.failure = undefined;
    this.setState('stopped', {});
  }

  health(): Health {
    const detail: Record<string, unknown> = {
      protocol: this.protocol,
      since: new Date(this.since).toISOString(),
      connects: this.connects,
      attempts: this.attempts,
    };
    if (this.failure) {
      detail['lastError'] = describeFailure(this.failure);
      detail['lastErrorCode'] = this.failure.code;
      if (this.failure.reasonCode !== undefined) detail['reasonCode'] = this.failure.reasonCode;
    }
    if (this.nextRetryAt !== undefined) {
      detail['retryDelayMs'] = this.retryDelayMs;
      detail['nextRetryInMs'] = Math.max(0, this.nextRetryAt - Date.now());
    }
    if (this.subscribeError) detail['subscribeError'] = this.subscribeError;
    return { ok: this.current === 'connected', state: this.current, detail };
  }
}

function describeFailureKey(failure: ConnectFailure): string {
  return `${failure.state}:${failure.code}:${failure.reasonCode ?? failure.systemCode ?? ''}`;
}
