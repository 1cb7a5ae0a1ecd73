/** `celfarm whoami`: the project, key and scopes of the API key in use. */
import type { Command } from 'commander';
import type { WhoAmI } from '@celfarm/contract';
import type { CliContext } from '../context.ts';
import { json } from '../format.ts';

export function addSessionCommands(program: Command, ctx: CliContext): void {
  program
    .command('whoami')
    .description('the project, key and scopes of the API key in use')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const me = (await ctx.api(cmd).request<WhoAmI>('GET', '/v1/session')).body;
      ctx.io.out(opts.json ? json(me) : `project ${me.project}\nkey     ${me.keyId} (${me.name})\nscopes  ${me.scopes.join(',')}\n`);
    });
}
