/**
 * Signatures follow Standard Webhooks: the reference library's own example (libraries/javascript
 * of standard-webhooks/standard-webhooks, "sign function works") must come out byte for byte, and
 * verify accepts exactly what a receiver should accept.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { newSecret, sign, signatureHeaders, verify, WebhookVerificationError } from '../src/signing.ts';

// The reference example: secret, message id, timestamp, payload and the signature it must give.
const REF = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const at = (unixSeconds: number) => () => unixSeconds * 1000;

describe('sign', () => {
  it('reproduces the Standard Webhooks reference signature', () => {
    assert.equal(sign(REF.secret, REF.id, REF.timestamp, REF.body), REF.signature);
    // The prefix is optional on the secret.
    assert.equal(sign(REF.secret.slice('whsec_'.length), REF.id, REF.timestamp, REF.body), REF.signature);
  });

  it('is HMAC-SHA256 over id.timestamp.body keyed by the decoded secret', () => {
    const secret = newSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update('evt_1.1700000000.{"a":1}').digest('base64');
    assert.equal(sign(secret, 'evt_1', 1700000000, '{"a":1}'), `v1,${expected}`);
  });

  it('makes secrets of 24 random bytes', () => {
    const a = newSecret();
    assert.match(a, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal(Buffer.from(a.slice(6), 'base64').length, 24);
    assert.notEqual(a, newSecret());
  });
});

describe('verify', () => {
  const headers = signatureHeaders(REF.secret, REF.id, REF.timestamp, REF.body);

  it('accepts the reference delivery within the tolerance, from fetch Headers or a plain object', () => {
    assert.deepEqual(verify(REF.secret, headers, REF.body, 300, at(REF.timestamp + 299)), { id: REF.id, timestamp: REF.timestamp });
    assert.ok(verify(REF.secret, new Headers({ ...headers }), REF.body, 300, at(REF.timestamp)));
    const upper = { 'Webhook-Id': REF.id, 'Webhook-Timestamp': String(REF.timestamp), 'Webhook-Signature': REF.signature };
    assert.ok(verify(REF.secret, upper, REF.body, 300, at(REF.timestamp)));
  });

  it('accepts a list of signatures when one of them matches', () => {
    const many = { ...headers, 'webhook-signature': `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc ${REF.signature}` };
    assert.ok(verify(REF.secret, many, REF.body, 300, at(REF.timestamp)));
  });

  const refusals: [string, Record<string, string>, string, () => number, RegExp][] = [
    ['a changed body', headers, '{"test": 2432232315}', at(REF.timestamp), /no matching/],
    ['another secret', headers, REF.body, at(REF.timestamp), /no matching/],
    ['an old timestamp', headers, REF.body, at(REF.timestamp + 301), /old/],
    ['a future timestamp', headers, REF.body, at(REF.timestamp - 301), /future/],
    ['a missing id', { ...headers, 'webhook-id': '' }, REF.body, at(REF.timestamp), /missing/],
    ['another id', { ...headers, 'webhook-id': 'msg_other' }, REF.body, at(REF.timestamp), /no matching/],
    ['a timestamp that is not a number', { ...headers, 'webhook-timestamp': 'hello' }, REF.body, at(REF.timestamp), /unix seconds/],
    ['a truncated signature', { ...headers, 'webhook-signature': REF.signature.slice(0, 8) }, REF.body, at(REF.timestamp), /no matching/],
    ['an empty v1 signature', { ...headers, 'webhook-signature': 'v1,' }, REF.body, at(REF.timestamp), /no matching/],
    ['the right signature under v2', { ...headers, 'webhook-signature': REF.signature.replace('v1,', 'v2,') }, REF.body, at(REF.timestamp), /no matching/],
  ];
  for (const [what, h, body, now, why] of refusals) {
    it(`refuses ${what}`, () => {
      const secret = what === 'another secret' ? newSecret() : REF.secret;
      assert.throws(() => verify(secret, h, body, 300, now), (e: unknown) => e instanceof WebhookVerificationError && why.test(e.message));
    });
  }
});
