/** The one project id rule: what a studio may name a project, and the words it is refused in. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROJECT_ID_RULE, projectIdSchema } from '../src/project-id.ts';

describe('project ids', () => {
  it('takes lowercase slugs up to 64 characters and refuses anything else in one sentence', () => {
    for (const ok of ['demo', 'show-101_seq2', '0', 'a'.repeat(64)]) assert.ok(projectIdSchema.safeParse(ok).success, ok);
    for (const bad of ['Bad Project', 'Demo', '-demo', '_demo', 'a/b', 'ä', '', 'a'.repeat(65)]) {
      const r = projectIdSchema.safeParse(bad);
      assert.ok(!r.success, bad);
      assert.equal(r.error.issues[0]?.message, PROJECT_ID_RULE, bad);
    }
  });
});
