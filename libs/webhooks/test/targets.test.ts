/**
 * The SSRF guard: which addresses count as private, and which targets are refused — including
 * names that resolve to private addresses, IPv4 spelled as IPv6, and what the allow-list opens.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTarget, classifyAddress, REFUSED_MESSAGE, TargetRefusedError, type AddressClass, type Lookup } from '../src/targets.ts';

describe('classifyAddress', () => {
  const cases: [string, AddressClass][] = [
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.0.1', 'public'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456:789a::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::192.168.0.1', 'private'],
    ['2002:c0a8:0101::1', 'private'],
    ['2606:4700:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['not-an-ip', 'invalid'],
    ['1.2.3', 'invalid'],
  ];
  for (const [ip, kind] of cases) {
    it(`${ip} is ${kind}`, () => assert.equal(classifyAddress(ip), kind));
  }
});

describe('checkTarget', () => {
  const dns: Record<string, string[]> = {
    'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'sneaky.example.com': ['93.184.216.34', '10.0.0.7'],
    'rebound.example.com': ['127.0.0.1'],
    localhost: ['127.0.0.1', '::1'],
  };
  const lookup: Lookup = async (host) => {
    const found = dns[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const refused = (why: RegExp) => (e: unknown) => e instanceof TargetRefusedError && why.test(e.message);

  it('accepts a public name with every address it resolves to', async () => {
    const t = await checkTarget('https://hooks.example.com/celfarm?x=1', [], lookup);
    assert.equal(t.host, 'hooks.example.com');
    assert.equal(t.port, 443);
    assert.equal(t.allowListed, false);
    assert.deepEqual(t.addresses.map((a) => a.address), dns['hooks.example.com']);
  });

  it('refuses private and loopback literals with the allow-list hint', async () => {
    for (const url of ['http://127.0.0.1:8080/x', 'http://10.1.2.3/', 'http://[::1]:9000/', 'http://169.254.169.254/latest/meta-data', 'http://0.0.0.0/', 'http://[fd00::1]/', 'http://100.64.1.1/']) {
      await assert.rejects(checkTarget(url, [], lookup), refused(new RegExp(REFUSED_MESSAGE.replace(/[;]/g, '.'))), url);
    }
  });

  it('refuses IPv4 in unusual spellings, which the URL parser normalises', async () => {
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://[::ffff:127.0.0.1]/', 'http://127.1/']) {
      await assert.rejects(checkTarget(url, [], lookup), refused(/loopback/), url);
    }
  });

  it('refuses a name when any of its addresses is private', async () => {
    await assert.rejects(checkTarget('https://sneaky.example.com/', [], lookup), refused(/sneaky\.example\.com → 10\.0\.0\.7 is private/));
    await assert.rejects(checkTarget('http://localhost:3000/', [], lookup), refused(/loopback/));
    await assert.rejects(checkTarget('http://rebound.example.com/', [], lookup), refused(/loopback/));
  });

  it('refuses what is not http or https, and what is not a URL', async () => {
    await assert.rejects(checkTarget('ftp://hooks.example.com/', [], lookup), refused(/only http and https/));
    await assert.rejects(checkTarget('file:///etc/passwd', [], lookup), refused(/only http and https/));
    await assert.rejects(checkTarget('hooks.example.com/x', [], lookup), refused(/valid absolute URL/));
  });

  it('lets an allow-listed host or host:port through, and nothing else', async () => {
    const byHost = await checkTarget('http://127.0.0.1:8080/x', ['127.0.0.1'], lookup);
    assert.equal(byHost.allowListed, true);
    assert.deepEqual(byHost.addresses, [{ address: '127.0.0.1', family: 4 }]);
    assert.ok(await checkTarget('http://127.0.0.1:8080/x', ['127.0.0.1:8080'], lookup));
    assert.ok(await checkTarget('http://LocalHost:3000/', ['localhost'], lookup));
    assert.ok(await checkTarget('http://[::1]:9000/', ['[::1]:9000'], lookup));
    assert.ok(await checkTarget('http://[::1]:9000/', ['::1'], lookup));
    await assert.rejects(checkTarget('http://127.0.0.1:8081/x', ['127.0.0.1:8080'], lookup), refused(/loopback/));
    // The allow-list names hosts, not addresses: a name that resolves to an allowed address is still refused.
    await assert.rejects(checkTarget('http://localhost:8080/', ['127.0.0.1'], lookup), refused(/localhost → 127\.0\.0\.1 is loopback/));
    await assert.rejects(checkTarget('http://10.0.0.1/', ['10.0.0.2', 'hooks.example.com'], lookup), refused(/private/));
  });

  it('lets a DNS failure through as it is (it may be transient)', async () => {
    await assert.rejects(checkTarget('https://gone.example.com/', [], lookup), (e: unknown) => !(e instanceof TargetRefusedError) && /ENOTFOUND/.test(String(e)));
  });
});
