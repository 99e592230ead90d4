// The named list of transient failures: what is retried and what fails at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, isTransient, TRANSIENT_SQLSTATES } from '../src/job/transient.ts';
import { ConfigError } from '../src/config.ts';

const withCode = (code: string) => Object.assign(new Error(code), { code });

test('connection failures, serialization, deadlock, lock timeout, shutdowns and too-many-connections are transient', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECT_TIMEOUT',
    '08000', '08003', '08006', '08001', '08004', '08P01', '40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300', '57014']) {
    assert.equal(isTransient(withCode(code)), true, code);
  }
  assert.ok(TRANSIENT_SQLSTATES.has('57P01'));
});

test('auth, syntax/undefined objects, data and constraint errors, bad configuration fail at once', () => {
  for (const code of ['28000', '28P01', '42501', '42883', '42P01', '42601', '22023', '22007', '22P02', '23505', '23503', '23514', 'P0001', '53100', '40002']) {
    assert.equal(isTransient(withCode(code)), false, code);
  }
  assert.equal(isTransient(new ConfigError('DATABASE_URL', 'bad')), false);
  assert.equal(isTransient(new Error('no code')), false);
  assert.equal(isTransient('a string'), false);
  assert.equal(isTransient(null), false);
});

test('Deno-style named network errors are recognised', () => {
  const refused = Object.assign(new Error('refused'), { name: 'ConnectionRefused' });
  assert.deepEqual(classify(refused), { transient: true, code: 'ECONNREFUSED' });
});
