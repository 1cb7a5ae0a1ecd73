/** `celfarm webhooks create|list|delete|deliveries|redeliver|ping`: your project's endpoints (admin scope). */
import type { Command } from 'commander';
import { InputError } from '../api.ts';
import { listArg, type CliContext } from '../context.ts';
import { json, recordTable } from '../format.ts';

export function addWebhookCommands(program: Command, ctx: CliContext): void {
  const hooks = program.command('webhooks').description('webhook endpoints of your project (admin scope)');

  hooks
    .command('create')
    .description('register an endpoint; prints its signing secret, shown only this once')
    .requiredOption('--url <url>', 'HTTPS endpoint that receives the events')
    .option('--events <list>', 'comma-separated event types (shot.completed, frame.failed, …) or *', listArg, ['*'])
    .option('--description <text>', 'a note for yourself')
    .option('--json', 'print the created webhook (with its secret) as JSON')
    .action(async (opts: { url: string; events: string[]; description?: string; json?: boolean }, cmd: Command) => {
      if (opts.events.length === 0) throw new InputError('INVALID_REQUEST', 'give at least one event type, or *', 'events');
      const hook = await ctx.api(cmd).createWebhook({ url: opts.url, events: opts.events, ...(opts.description ? { description: opts.description } : {}) });
      if (opts.json) {
        ctx.io.out(json(hook));
        return;
      }
      ctx.io.out(`id      ${hook.id}\nurl     ${hook.url}\nevents  ${hook.events.join(',')}\nsecret  ${hook.secret}\n`);
      ctx.io.err('keep the secret: it verifies the webhook-signature header of every delivery\n');
    });

  hooks
    .command('list')
    .description('registered endpoints')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const list = await ctx.api(cmd).webhooks();
      ctx.io.out(opts.json ? json(list) : recordTable(list, ['id', 'url', 'events', 'description', 'disabled', 'createdAt']));
    });

  hooks
    .command('delete')
    .description('remove an endpoint')
    .argument('<id>', 'webhook id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await ctx.api(cmd).deleteWebhook(id);
      ctx.io.out(`deleted webhook ${id}\n`);
    });

  hooks
    .command('deliveries')
    .description("an endpoint's recent deliveries")
    .argument('<id>', 'webhook id')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const list = await ctx.api(cmd).deliveries(id);
      ctx.io.out(opts.json ? json(list) : recordTable(list, ['at', 'eventId', 'type', 'attempt', 'delivered', 'status', 'durationMs', 'error']));
    });

  hooks
    .command('redeliver')
    .description('send an event to an endpoint again')
    .argument('<id>', 'webhook id')
    .argument('<eventId>', 'event id (from deliveries)')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, eventId: string, opts: { json?: boolean }, cmd: Command) => {
      const r = (await ctx.api(cmd).redeliver(id, eventId)) as { jobId?: string } | undefined;
      ctx.io.out(opts.json ? json(r ?? null) : `redelivery of ${eventId} to webhook ${id} queued${r?.jobId ? ` (job ${r.jobId})` : ''}\n`);
    });

  hooks
    .command('ping')
    .description('deliver a webhook.ping event now and show the attempt (exit 1 when it was not delivered)')
    .argument('<id>', 'webhook id')
    .option('--json', 'print the attempt as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const r = ((await ctx.api(cmd).ping(id)) ?? {}) as { eventId?: string; delivered?: boolean; status?: number; durationMs?: number; error?: string };
      if (opts.json) ctx.io.out(json(r));
      else {
        const how = r.delivered ? 'delivered' : `not delivered${r.error ? `: ${r.error}` : ''}`;
        ctx.io.out(`ping ${r.eventId ?? ''} ${how}${r.status !== undefined ? ` (HTTP ${r.status})` : ''}${r.durationMs !== undefined ? ` in ${r.durationMs} ms` : ''}\n`);
      }
      if (r.delivered === false) ctx.fail();
    });
}
