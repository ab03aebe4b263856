/**
 * The out-of-the-box broker: aedes on 127.0.0.1 when no broker URL is configured, so a fresh
 * `npm start` publishes somewhere a person can subscribe. Loopback only. MQTT 3.1.1.
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';

export class EmbeddedBroker {
  private constructor(
    private readonly broker: Aedes,
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(port: number, host = '127.0.0.1'): Promise<EmbeddedBroker> {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle as unknown as (socket: import('node:net').Socket) => void);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    return new EmbeddedBroker(broker, server, typeof addr === 'object' && addr ? addr.port : port);
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.broker.close(() => r()));
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
