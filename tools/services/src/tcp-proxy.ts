/**
 * A TCP proxy on 127.0.0.1 in front of a local service, that a test can cut: {@link TcpProxy.cut}
 * stops listening (new connections are refused) and destroys every open connection, both sides —
 * a real outage, unlike stopping s3rver, whose open keep-alive connections go on serving —
 * and {@link TcpProxy.restore} listens again on the same port.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxyOptions {
  /** Port of the service on 127.0.0.1. */
  targetPort: number;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Sees every chunk a client sends (e.g. to count requests of some kind). */
  tap?: (chunk: Buffer) => void;
}

export interface TcpProxy {
  port: number;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Refuses new connections and resets the open ones; resolves with how many client connections were open. */
  cut(): Promise<number>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(opts: TcpProxyOptions): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const clients = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer((client) => {
        track(client);
        clients.add(client);
        client.once('close', () => clients.delete(client));
        const upstream = connect(opts.targetPort, '127.0.0.1');
        track(upstream);
        client.on('data', (chunk: Buffer) => opts.tap?.(chunk));
        client.pipe(upstream).pipe(client);
        const end = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('error', end);
        upstream.on('error', end);
        client.on('close', end);
        upstream.on('close', end);
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        server = srv;
        const addr = srv.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      const srv = server;
      server = undefined;
      if (!srv) return resolve();
      srv.close(() => resolve());
      // close() waits for open connections; destroying them is the point of a cut.
      for (const s of open) s.destroy();
    });

  const port = await listen(opts.port ?? 0);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async cut() {
      const count = clients.size;
      await stopListening();
      return count;
    },
    async restore() {
      if (!server) await listen(port);
    },
    close: stopListening,
  };
}
