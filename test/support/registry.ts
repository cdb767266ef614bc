/** Helpers for tests that register residents through the real API. */
import { expect } from 'vitest';
import type { TestApp } from './app.ts';

export interface Resident {
  residentCode: string;
  myNumber: string;
}

/** Draws a code and its My Number for a municipality actor. */
export async function newResident(t: TestApp, actor: string): Promise<Resident> {
  const codes = await t.app.inject({
    method: 'POST',
    url: '/v1/registry/resident-codes',
    headers: t.auth(actor),
    payload: { count: 1 },
  });
  const residentCode = codes.json<{ residentCodes: string[] }>().residentCodes[0] ?? '';
  const n = await t.app.inject({
    method: 'POST',
    url: '/v1/numbering/my-numbers',
    headers: t.auth(actor),
    payload: { residentCode },
  });
  expect(n.statusCode).toBe(201);
  return { residentCode, myNumber: n.json<{ myNumber: string }>().myNumber };
}

export const baseRecord = (r: Resident) => ({
  residentCode: r.residentCode,
  myNumber: r.myNumber,
  name: '山田　花子',
  nameKana: 'ヤマダ　ハナコ',
  birthDate: '2026-03-20',
  sex: 'female' as const,
  address: '東京都千代田区千代田1番1号',
});
