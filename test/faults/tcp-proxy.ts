/**
 * A TCP proxy of the suite's own (node:net) between the farm and its S3 endpoint, so a storage
 * outage can be made real: `cut()` stops listening (new connections are refused) and closes every
 * open connection, including the keep-alive sockets the S3 clients hold — stopping s3rver alone
 * leaves those serving. `restore()` listens again on the same port.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ProxyStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Client connections (each with its upstream) closed by the last `cut()`. */
  closed: number;
}

export class TcpProxy {
  private server?: Server;
  private readonly open = new Set<[client: Socket, upstream: Socket]>();
  private portNo = 0;
  readonly stats: ProxyStats = { accepted: 0, closed: 0 };

  constructor(private readonly target: { host: string; port: number }) {}

  get port(): number {
    return this.portNo;
  }

  /** `http://127.0.0.1:<port>`: what the farm gets as S3_ENDPOINT. */
  get url(): string {
    return `http://127.0.0.1:${this.portNo}`;
  }

  get up(): boolean {
    return this.server !== undefined;
  }

  /** Listens on 127.0.0.1 (`port`, or a free one the first time). */
  async start(port = this.portNo): Promise<void> {
    const server = createServer((client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.portNo = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Refuses new connections from now on and closes every open one; returns how many it closed. */
  async cut(): Promise<number> {
    const server = this.server;
    this.server = undefined;
    // Not awaited: close() waits for the connections to end, which the loop below makes happen.
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    const pairs = [...this.open];
    for (const [client, upstream] of pairs) {
      // destroy(), not resetAndDestroy(): an RST would look more like a crashed host, but on Node
      // 20 a process that reset sockets this way could spin forever in its exit cleanup.
      client.destroy();
      upstream.destroy();
    }
    this.open.clear();
    this.stats.closed = pairs.length;
    await closed;
    return pairs.length;
  }

  /** Accepts connections again on the same port. */
  async restore(): Promise<void> {
    if (!this.server) await this.start(this.portNo);
  }

  async stop(): Promise<void> {
    await this.cut();
  }

  private pipe(client: Socket): void {
    this.stats.accepted++;
    const upstream = connect(this.target.port, this.target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.open.add(pair);
    const drop = () => {
      this.open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
