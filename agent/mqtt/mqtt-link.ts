import fs from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { redactUrl } from '../config/redact.js';
import type { MqttConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';

export interface MqttLinkDeps {
  /** A thunk: the embedded broker's URL is known only once it listens. */
  url: () => string;
  config: MqttConfig;
  clientId: string;
  availabilityTopic: string;
  log: Logger;
}

/** How long start() waits for the first connection before going on without it. */
const FIRST_CONNECT_WAIT_MS = 3000;
const OFFLINE_PUBLISH_WAIT_MS = 1000;

/**
 * The one broker connection: retained availability with a last will, reconnect with a fixed
 * period (mqtt.js), TLS and credentials. Publishing while disconnected is the outbox drain's
 * concern: this link only publishes when connected.
 */
export class MqttLink implements Service {
  readonly name = 'mqtt';
  private client: MqttClient | undefined;
  private connects = 0;
  private lastError: string | undefined;
  private readonly connectListeners = new Set<() => void>();

  constructor(private readonly deps: MqttLinkDeps) {}

  get connected(): boolean {
    return this.client?.connected === true;
  }

  onConnect(listener: () => void): void {
    this.connectListeners.add(listener);
  }

  private options(): IClientOptions {
    const { config, clientId, availabilityTopic } = this.deps;
    const options: IClientOptions = {
      clientId,
      protocolVersion: 4,
      keepalive: config.keepaliveSeconds,
      reconnectPeriod: config.reconnectMs,
      connectTimeout: 10_000,
      clean: true,
      queueQoSZero: false,
      will: { topic: availabilityTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    if (config.username !== undefined) options.username = config.username;
    if (config.password !== undefined) options.password = config.password;
    if (config.tls) {
      if (config.tls.caFile) options.ca = fs.readFileSync(config.tls.caFile);
      if (config.tls.certFile) options.cert = fs.readFileSync(config.tls.certFile);
      if (config.tls.keyFile) options.key = fs.readFileSync(config.tls.keyFile);
      options.rejectUnauthorized = config.tls.rejectUnauthorized;
    }
    return options;
  }

  async start(signal: AbortSignal): Promise<void> {
    const url = this.deps.url();
    const log = this.deps.log;
    const client = mqtt.connect(url, this.options());
    this.client = client;
    client.on('connect', () => {
      this.connects++;
      this.lastError = undefined;
      log.info({ url: redactUrl(url), reconnect: this.connects > 1 }, 'mqtt connected');
      client.publish(this.deps.availabilityTopic, 'online', { qos: 1, retain: true });
      for (const listener of this.connectListeners) listener();
    });
    client.on('error', (error) => {
      const code = (error as { code?: unknown }).code;
      const text = typeof code === 'number' || typeof code === 'string' ? `${code}: ${errorMessage(error)}` : errorMessage(error);
      if (text !== this.lastError) log.warn({ err: text }, 'mqtt error');
      this.lastError = text;
    });
    client.on('offline', () => log.warn('mqtt offline: results are kept in the outbox'));
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        client.off('connect', done);
        resolve();
      };
      const timer = setTimeout(() => {
        log.warn({ url: redactUrl(url), waitedMs: FIRST_CONNECT_WAIT_MS }, 'mqtt not connected yet: going on, the outbox keeps results');
        done();
      }, FIRST_CONNECT_WAIT_MS);
      client.on('connect', done);
      signal.addEventListener('abort', done);
    });
  }

  /** Resolves when the broker acknowledged (QoS 1), rejects when the link fails first. */
  async publish(topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean): Promise<void> {
    if (!this.client?.connected) throw new Error('mqtt not connected');
    await this.client.publishAsync(topic, payload, { qos, retain });
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.connected) {
      // An orderly stop says "offline" itself; the will covers only crashes.
      await Promise.race([
        client.publishAsync(this.deps.availabilityTopic, 'offline', { qos: 1, retain: true }).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, OFFLINE_PUBLISH_WAIT_MS)),
      ]);
    }
    await client.endAsync(true);
  }

  health(): Health {
    return {
      ok: this.connected,
      state: this.connected ? 'connected' : 'disconnected',
      detail: { connects: this.connects, ...(this.lastError ? { lastError: this.lastError } : {}) },
    };
  }
}
