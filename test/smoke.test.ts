import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './support/app.ts';

describe('service smoke test', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('answers health, readiness and whoami', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', migrations: { pending: 0 } });
    const me = await t.app.inject({ url: '/v1/whoami', headers: t.auth('municipality') });
    expect(me.json()).toMatchObject({ type: 'municipality', municipalityCode: '131016' });
  });
});
