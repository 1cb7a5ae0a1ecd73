/**
 * The SSRF guard of webhook targets. A studio names any URL; the farm POSTs to it from inside
 * its network, so a target must resolve only to public addresses — unless its host (or
 * host:port) is allow-listed for the project or for the whole farm. Checked when a subscription
 * is created and again at every delivery, where the delivery connects to exactly the addresses
 * that were checked (a name that re-resolves to 127.0.0.1 afterwards gains nothing).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'unique-local'
  | 'multicast'
  | 'unspecified'
  | 'reserved'
  | 'invalid';

/** The refusal message, the same at creation and at delivery. */
export const REFUSED_MESSAGE = 'private or loopback address not allowed; an admin can allow-list it';

export class TargetRefusedError extends Error {
  override readonly name = 'TargetRefusedError';
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type Lookup = (host: string) => Promise<ResolvedAddress[]>;

const systemLookup: Lookup = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export interface CheckedTarget {
  url: URL;
  /** Host name as in the URL, without IPv6 brackets, lowercase. */
  host: string;
  port: number;
  /** The addresses the delivery may connect to (every one of them checked). */
  addresses: ResolvedAddress[];
  /** True when the host was allow-listed (its addresses were not classified). */
  allowListed: boolean;
}

function v4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function classifyV4([a, b, c]: number[]): AddressClass {
  if (a === undefined || b === undefined || c === undefined) return 'invalid';
  if (a === 0) return 'unspecified'; // 0.0.0.0/8, "this network"
  if (a === 127) return 'loopback';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 100 && b >= 64 && b <= 127) return 'cgnat';
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return 'reserved'; // 240/4 and the broadcast address
  if (a === 192 && b === 0 && c === 0) return 'reserved'; // IETF protocol assignments
  if (a === 198 && (b === 18 || b === 19)) return 'reserved'; // benchmarking
  return 'public';
}

/** 16 bytes of an IPv6 address (zone id ignored), or null when it does not parse. */
function v6Bytes(ip: string): number[] | null {
  let s = ip.split('%')[0]!.toLowerCase();
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    if (isIP(dotted[1]!) !== 4) return null;
    tail = v4Bytes(dotted[1]!);
    s = s.slice(0, -dotted[1]!.length) + '0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const all = [...head, ...Array<string>(missing).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 ? bytes : null;
}

function classifyV6(b: number[]): AddressClass {
  const zeroUpTo = (n: number) => b.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(16)) return 'unspecified';
  if (zeroUpTo(15) && b[15] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d and the deprecated IPv4-compatible ::a.b.c.d reach IPv4 hosts.
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return classifyV4(b.slice(12));
  if (zeroUpTo(12)) return classifyV4(b.slice(12));
  // NAT64 64:ff9b::/96 and 6to4 2002::/16 embed an IPv4 address.
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) return classifyV4(b.slice(12));
  if (b[0] === 0x20 && b[1] === 0x02) {
    const inner = classifyV4(b.slice(2, 6));
    if (inner !== 'public') return inner;
  }
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local'; // fe80::/10
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return 'private'; // fec0::/10, deprecated site-local
  if ((b[0]! & 0xfe) === 0xfc) return 'unique-local'; // fc00::/7
  if (b[0] === 0xff) return 'multicast';
  return 'public';
}

/** What kind of address `ip` is (IPv4 or IPv6, IPv6 brackets and zone ids tolerated). */
export function classifyAddress(ip: string): AddressClass {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const family = isIP(bare.split('%')[0]!);
  if (family === 4) return classifyV4(v4Bytes(bare));
  if (family === 6) {
    const bytes = v6Bytes(bare);
    return bytes ? classifyV6(bytes) : 'invalid';
  }
  return 'invalid';
}

/** An allow-list entry or URL host in one spelling: lowercase, IPv6 without brackets. */
function normalHost(host: string): string {
  const h = host.trim().toLowerCase();
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function allowed(host: string, port: number, allowHosts: readonly string[]): boolean {
  for (const entry of allowHosts) {
    const e = entry.trim().toLowerCase();
    if (!e) continue;
    if (normalHost(e) === host) return true;
    // host:port, with IPv6 as [::1]:8080
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(e);
    if (m && normalHost(m[1]!) === host && Number(m[2]) === port) return true;
  }
  return false;
}

/**
 * Parses and checks a webhook target. Throws TargetRefusedError (permanent: not http(s), or an
 * address that is not public and not allow-listed); a failed DNS lookup is rethrown as it is
 * (it may be transient: the caller decides).
 */
export async function checkTarget(raw: string, allowHosts: readonly string[], lookup: Lookup = systemLookup): Promise<CheckedTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefusedError('not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TargetRefusedError(`only http and https URLs are allowed, not ${url.protocol}`);
  const host = normalHost(url.hostname);
  if (!host) throw new TargetRefusedError('the URL has no host');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const literal = isIP(host);
  const addresses: ResolvedAddress[] = literal ? [{ address: host, family: literal === 6 ? 6 : 4 }] : await lookup(host);
  if (addresses.length === 0) throw new Error(`${host} resolves to no address`);
  const allowListed = allowed(host, port, allowHosts);
  if (!allowListed) {
    for (const a of addresses) {
      const kind = classifyAddress(a.address);
      if (kind !== 'public') {
        const via = literal ? host : `${host} → ${a.address}`;
        throw new TargetRefusedError(`${REFUSED_MESSAGE} (${via} is ${kind})`);
      }
    }
  }
  return { url, host, port, addresses, allowListed };
}
