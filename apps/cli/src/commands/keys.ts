/** `celfarm keys create|list|revoke`: the API keys of your project (admin scope). */
import type { Command } from 'commander';
import { SCOPES } from '@celfarm/contract';
import { InputError } from '../api.ts';
import { listArg, numberArg, type CliContext } from '../context.ts';
import { json, recordTable } from '../format.ts';

const scopeNames: readonly string[] = SCOPES;

export function addKeyCommands(program: Command, ctx: CliContext): void {
  const keys = program.command('keys').description('API keys of your project (admin scope)');

  keys
    .command('create')
    .description('create a key; prints its token, shown only this once')
    .requiredOption('--name <name>', 'a name to recognise the key by')
    .option('--scopes <list>', `comma-separated scopes: ${SCOPES.join(', ')}`, listArg, ['submit', 'read'])
    .option('--rate-limit <n>', 'requests per second this key may make', numberArg('--rate-limit'))
    .option('--json', 'print the created key (with its token) as JSON')
    .action(async (opts: { name: string; scopes: string[]; rateLimit?: number; json?: boolean }, cmd: Command) => {
      const bad = opts.scopes.find((s) => !scopeNames.includes(s));
      if (bad !== undefined || opts.scopes.length === 0) {
        throw new InputError('INVALID_REQUEST', `scopes must be some of ${SCOPES.join(', ')}${bad !== undefined ? `; got ${bad}` : ''}`, 'scopes');
      }
      const key = await ctx.api(cmd).createKey({ name: opts.name, scopes: opts.scopes, ...(opts.rateLimit !== undefined ? { rateLimit: opts.rateLimit } : {}) });
      if (opts.json) {
        ctx.io.out(json(key));
        return;
      }
      ctx.io.out(`${key.token}\n`);
      ctx.io.err(`key ${key.id} "${key.name}" (${key.scopes.join(',')}); the token above is shown only once\n`);
    });

  keys
    .command('list')
    .description("your project's keys (never their tokens)")
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await ctx.api(cmd).keys();
      ctx.io.out(opts.json ? json(list) : recordTable(list, ['id', 'name', 'scopes', 'project', 'rateLimit', 'createdAt', 'revokedAt', 'lastUsedAt']));
    });

  keys
    .command('revoke')
    .description('revoke a key (takes effect at once)')
    .argument('<id>', 'key id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await ctx.api(cmd).revokeKey(id);
      ctx.io.out(`revoked key ${id}\n`);
    });
}
