import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/database.ts';
import { type Actor, ActorStore, generateToken, hashToken, type NewActor } from './actors.ts';
import { FakeClock } from './clock.ts';
import { AppError } from './errors.ts';

let t: TestDatabase;
const clock = new FakeClock('2026-04-01T00:00:00Z');
const actors = new ActorStore(clock);

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t?.close());

/** The AppError `create` rejects with (fails the test if it resolves or throws anything else). */
async function rejection(input: NewActor): Promise<AppError> {
  const err: unknown = await actors.create(t.db, input).then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

async function invalid(input: NewActor, message: RegExp): Promise<void> {
  const err = await rejection(input);
  expect(err.kind).toBe('badRequest');
  expect(err.code).toBe('actor.invalid');
  expect(err.detail).toMatch(message);
  expect(await actors.byName(t.db, input.name)).toBeNull();
}

describe('tokens', () => {
  it('look like kbn_ + 256 random bits in base64url', () => {
    const tokens = Array.from({ length: 50 }, () => generateToken());
    for (const token of tokens) {
      expect(token).toMatch(/^kbn_[A-Za-z0-9_-]{43,}$/);
      expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
    }
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('are hashed with SHA-256', () => {
    const token = generateToken();
    const expected = createHash('sha256').update(token, 'utf8').digest();
    expect(hashToken(token)).toHaveLength(32);
    expect(hashToken(token).equals(expected)).toBe(true);
    expect(hashToken('kbn_東京').toString('hex')).toBe(
      createHash('sha256').update(Buffer.from('kbn_東京', 'utf8')).digest('hex'),
    );
    expect(hashToken(token).equals(hashToken(`${token}x`))).toBe(false);
  });
});

describe('ActorStore tokens and authentication', () => {
  let operator: Actor;
  let token: string;
  let tokenId: string;

  beforeAll(async () => {
    operator = await actors.create(t.db, {
      name: 'auth-operator',
      type: 'agencyOperator',
      roles: ['registry', 'auditor'],
    });
    ({ id: tokenId, token } = await actors.createToken(t.db, operator.id, { label: 'test' }));
  });

  it('stores only the 32-byte hash of a token', async () => {
    const r = await t.db.query<{ token_hash: Uint8Array; label: string; expires_at: Date | null }>(
      'SELECT token_hash, label, expires_at FROM api_tokens WHERE id = $1',
      [tokenId],
    );
    const row = r.rows[0];
    expect(row?.label).toBe('test');
    expect(row?.expires_at).toBeNull();
    expect(Buffer.from(row?.token_hash ?? []).equals(hashToken(token))).toBe(true);
    // No column of any token row holds the clear token or its random part.
    const all = await t.db.query<{ row: string }>(
      'SELECT row_to_json(t)::text AS row FROM api_tokens t',
    );
    expect(all.rows.length).toBeGreaterThan(0);
    const secret = token.slice(4);
    for (const { row: text } of all.rows) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(Buffer.from(secret).toString('hex'));
    }
    const columns = await t.db.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns
        WHERE table_name = 'api_tokens' AND table_schema = current_schema() ORDER BY column_name`,
    );
    expect(columns.rows.map((c) => c.column_name)).toEqual([
      'actor_id',
      'created_at',
      'expires_at',
      'id',
      'label',
      'revoked_at',
      'token_hash',
    ]);
  });

  it('authenticates a valid token as its actor', async () => {
    expect(await actors.authenticate(t.db, token)).toEqual(operator);
  });

  it('refuses unknown, malformed and oversized tokens', async () => {
    expect(await actors.authenticate(t.db, generateToken())).toBeNull();
    expect(await actors.authenticate(t.db, `${token}x`)).toBeNull();
    expect(await actors.authenticate(t.db, token.slice(0, -1))).toBeNull();
    expect(await actors.authenticate(t.db, token.slice(4))).toBeNull(); // without the prefix
    expect(await actors.authenticate(t.db, '')).toBeNull();
    expect(await actors.authenticate(t.db, `kbn_${'a'.repeat(300)}`)).toBeNull();
  });

  it('refuses a revoked token, and only that one', async () => {
    const other = await actors.createToken(t.db, operator.id);
    expect(await actors.authenticate(t.db, other.token)).toEqual(operator);
    expect(await actors.revokeToken(t.db, other.id)).toBe(true);
    expect(await actors.authenticate(t.db, other.token)).toBeNull();
    expect(await actors.revokeToken(t.db, other.id)).toBe(false);
    expect(await actors.authenticate(t.db, token)).toEqual(operator);
  });

  it('refuses an expired token', async () => {
    const expiresAt = new Date(clock.now().getTime() + 3_600_000);
    const temp = await actors.createToken(t.db, operator.id, { expiresAt });
    expect(await actors.authenticate(t.db, temp.token)).toEqual(operator);
    clock.advance(3_600_000 - 1);
    expect(await actors.authenticate(t.db, temp.token)).toEqual(operator);
    clock.advance(1);
    expect(await actors.authenticate(t.db, temp.token)).toBeNull();
    // Tokens without an expiry are unaffected.
    expect(await actors.authenticate(t.db, token)).toEqual(operator);
  });

  it('refuses every token of a suspended actor', async () => {
    await t.db.query("UPDATE actors SET status = 'suspended' WHERE id = $1", [operator.id]);
    expect(await actors.authenticate(t.db, token)).toBeNull();
    expect((await actors.byName(t.db, operator.name))?.status).toBe('suspended');
    await t.db.query("UPDATE actors SET status = 'active' WHERE id = $1", [operator.id]);
    expect(await actors.authenticate(t.db, token)).toEqual(operator);
  });
});

describe('ActorStore.create', () => {
  it('binds a municipality actor to the master data (千代田区)', async () => {
    const a = await actors.create(t.db, {
      name: 'chiyoda',
      type: 'municipality',
      municipalityCode: '131016',
    });
    expect(a).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      name: 'chiyoda',
      type: 'municipality',
      displayName: '千代田区',
      roles: [],
      municipalityCode: '131016',
      prefectureCode: '13',
      purposes: [],
      status: 'active',
      verifierId: null,
      verifierRefusal: null,
    });
    expect(await actors.byName(t.db, 'chiyoda')).toEqual(a);
  });

  it('accepts a designated-city ward and a given display name', async () => {
    const a = await actors.create(t.db, {
      name: 'yokohama-naka',
      type: 'municipality',
      municipalityCode: '141046',
      displayName: '横浜市中区役所',
    });
    expect(a).toMatchObject({
      municipalityCode: '141046',
      prefectureCode: '14',
      displayName: '横浜市中区役所',
    });
  });

  it.each([
    ['a prefecture code', '130001'],
    ['a designated city (its wards keep the register)', '141003'],
    ['an unknown code', '999999'],
    ['a code without its check digit', '13101'],
  ])('refuses a municipality bound to %s', async (_what, code) => {
    await invalid(
      { name: `muni-${code}`, type: 'municipality', municipalityCode: code },
      /not a municipality or ward/,
    );
  });

  it('refuses a municipality without a code', async () => {
    await invalid({ name: 'muni-none', type: 'municipality' }, /needs a municipality code/);
  });

  it('binds a prefecture actor to a valid 2-digit code', async () => {
    const a = await actors.create(t.db, {
      name: 'tokyo',
      type: 'prefecture',
      prefectureCode: '13',
    });
    expect(a).toMatchObject({
      type: 'prefecture',
      prefectureCode: '13',
      municipalityCode: null,
      displayName: '東京都',
    });
    for (const code of ['48', '00', '1', '130001', 'ab', undefined]) {
      await invalid(
        { name: `pref-${code ?? 'none'}`, type: 'prefecture', prefectureCode: code },
        /valid 2-digit prefecture code/,
      );
    }
  });

  it('requires roles for an agencyOperator, and only for it', async () => {
    await invalid({ name: 'op-none', type: 'agencyOperator' }, /needs at least one role/);
    await invalid({ name: 'op-empty', type: 'agencyOperator', roles: [] }, /at least one role/);
    await invalid(
      { name: 'op-bad', type: 'agencyOperator', roles: ['root' as 'ca'] },
      /unknown role root/,
    );
    await invalid(
      { name: 'verifier-roles', type: 'signatureVerifier', roles: ['ca'] },
      /only agencyOperator actors have roles/,
    );
    const op = await actors.create(t.db, { name: 'op-ca', type: 'agencyOperator', roles: ['ca'] });
    expect(op).toMatchObject({ roles: ['ca'], displayName: 'op-ca', prefectureCode: null });
  });

  it('gives legal purposes to nationalAgency actors only', async () => {
    await invalid({ name: 'agency-none', type: 'nationalAgency' }, /at least one legal purpose/);
    await invalid(
      {
        name: 'muni-purposes',
        type: 'municipality',
        municipalityCode: '131016',
        purposes: ['pensionBenefits'],
      },
      /only nationalAgency actors have legal purposes/,
    );
    await invalid(
      { name: 'resident-purposes', type: 'resident', purposes: ['x'] },
      /only nationalAgency/,
    );
    const agency = await actors.create(t.db, {
      name: 'pension-agency',
      type: 'nationalAgency',
      purposes: ['pensionBenefits', 'taxation'],
    });
    expect(agency.purposes).toEqual(['pensionBenefits', 'taxation']);
  });

  it('refuses bindings that do not belong to the type', async () => {
    await invalid(
      { name: 'agency-muni', type: 'nationalAgency', purposes: ['x'], municipalityCode: '131016' },
      /only municipality actors are bound to a municipality code/,
    );
    await invalid(
      { name: 'resident-pref', type: 'resident', prefectureCode: '13' },
      /only prefecture actors are bound to a prefecture code/,
    );
  });

  it('refuses bad names and reports every problem at once', async () => {
    for (const name of ['', 'has space', '-leading', 'a'.repeat(65), '千代田', 'x\n']) {
      await invalid({ name, type: 'resident' }, /name must be/);
    }
    const err = await rejection({ name: 'bad name', type: 'agencyOperator', purposes: ['x'] });
    expect(err.detail).toMatch(/name must be/);
    expect(err.detail).toMatch(/at least one role/);
    expect(err.detail).toMatch(/legal purposes/);
    expect(err.status).toBe(400);
  });

  it('refuses a duplicate name with a conflict', async () => {
    await actors.create(t.db, { name: 'dup', type: 'resident' });
    const err = await rejection({ name: 'dup', type: 'prefecture', prefectureCode: '13' });
    expect(err.kind).toBe('conflict');
    expect(err.code).toBe('actor.name-taken');
    expect((await actors.byName(t.db, 'dup'))?.type).toBe('resident');
  });

  it('refuses a duplicate name with a conflict also when two creates race', async () => {
    // Open pool connections first (PostgreSQL), so that both transactions really overlap.
    await Promise.all([1, 2, 3].map(() => t.db.query('SELECT pg_sleep(0.01)')));
    const results = await Promise.allSettled(
      (['resident', 'resident'] as const).map((type) =>
        t.db.transaction((tx) => actors.create(tx, { name: 'racer', type })),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected');
    expect(lost?.reason).toBeInstanceOf(AppError);
    expect((lost?.reason as AppError).kind).toBe('conflict');
  });

  it('lists actors', async () => {
    const names = (await actors.list(t.db)).map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['chiyoda', 'tokyo', 'op-ca', 'dup', 'racer']));
    expect(names).not.toContain('muni-130001');
  });
});
