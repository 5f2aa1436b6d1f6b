import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accountProblem, tagProblem, MAX_TAGS_PER_ACCOUNT_PER_CALL } from '../../src/tim/wire.js';
import { DEMO_USERS_FILE, formatDemoUsers, makeDemoUsers, type DemoUser } from '../../scripts/make-demo-data.js';

const text = readFileSync(DEMO_USERS_FILE, 'utf8');
const users = JSON.parse(text) as DemoUser[];

describe('data/demo-users.json', () => {
  it('is what scripts/make-demo-data.ts makes (run it after changing the script)', () => {
    expect(text).toBe(formatDemoUsers(makeDemoUsers()));
  });

  it('has the named users, ~300 in all, about 10% without tags, under 60 distinct tags', () => {
    const byAccount = new Map(users.map((u) => [u.To_Account, u.Tags]));
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      expect(byAccount.get(name)?.length).toBeGreaterThanOrEqual(2);
      expect(byAccount.get(name)?.length).toBeLessThanOrEqual(5);
    }
    expect(byAccount.get('frank')).toEqual([]);
    expect(byAccount.has('user001')).toBe(true);
    expect(users).toHaveLength(300);
    expect(byAccount.size).toBe(300);
    expect(users.filter((u) => u.Tags.length === 0)).toHaveLength(30);
    expect(new Set(users.flatMap((u) => u.Tags)).size).toBeLessThan(60);
  });

  it('holds only accounts and tags the upstream accepts, each addable in one call', () => {
    for (const u of users) {
      expect(accountProblem(u.To_Account)).toBeNull();
      expect(u.Tags.map(tagProblem).filter(Boolean)).toEqual([]);
      expect(new Set(u.Tags).size).toBe(u.Tags.length);
      expect(u.Tags.length).toBeLessThanOrEqual(MAX_TAGS_PER_ACCOUNT_PER_CALL);
    }
  });
});
