import net from 'node:net';
import { Aedes } from 'aedes';
import { AgentError, systemErrorCode } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';

/**
 * An in-process MQTT 3.1.1 broker (aedes) for a device with no broker configured, so a user
 * can watch results with any MQTT client. In-memory only: the outbox is the durable part.
 */
export class EmbeddedBroker implements Service {
  readonly name = 'embedded-broker';
  private broker: Aedes | undefined;
  private server: net.Server | undefined;
  private clients = 0;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly log: Logger,
  ) {}

  get url(): string {
    const host = this.host === '0.0.0.0' ? '127.0.0.1' : this.host;
    return `mqtt://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    this.broker = broker;
    broker.on('client', () => this.clients++);
    broker.on('clientDisconnect', () => this.clients--);
    const server = net.createServer(broker.handle);
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => {
        if (systemErrorCode(error) === 'EADDRINUSE') {
          reject(new AgentError('MQTT_EMBEDDED_PORT_IN_USE', `mqtt.embeddedBroker.port: ${this.host}:${this.port} is already in use`, { cause: error }));
        } else {
          reject(error);
        }
      });
      server.listen(this.port, this.host, () => resolve());
    });
    this.log.info({ url: this.url }, 'embedded MQTT broker listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server?.listening) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of this.sockets) socket.destroy();
      });
    }
  }

  health(): Health {
    return { ok: this.server?.listening === true, state: this.server?.listening ? 'listening' : 'stopped', detail: { url: this.url, clients: this.clients } };
  }
}
