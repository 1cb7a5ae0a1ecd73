/**
 * `celfarm`: submit shots to a celfarm farm, follow them, review their frames (shot QA), download
 * their outputs, and manage API keys and webhooks.
 *
 *   celfarm submit shots/sc010 --reference ref.png --show ABC --mode full --wait --out out/sc010
 *   celfarm status <shot> [--json]      celfarm list [-q sc010]            celfarm wait <shot>
 *   celfarm download <shot> --out DIR   celfarm cancel <shot>              celfarm retry <shot>
 *   celfarm frames <shot> --needs-review  celfarm approve <shot> 3 5-8     celfarm rerender <shot> 3 --seed 77
 *   celfarm qa thresholds [--set palette=8,lineFidelity=0.5 | --clear]
 *   celfarm keys create --name ci --scopes submit,read                     celfarm keys list|revoke
 *   celfarm webhooks create --url https://… --events shot.completed,shot.failed
 *
 * Global: `--api <url>` (CELFARM_API, default http://127.0.0.1:8080), `--key <token>` (CELFARM_KEY).
 * Exit status (`EXIT` in context.ts): 0 success; 2 bad input (a 4xx answer, a bad flag or file);
 * 1 anything else, including a shot that ended failed or cancelled; 3 `submit --strict` whose shot
 * came back with settings warnings.
 *
 * This module assembles the program; each noun's commands live in commands/.
 */
import { Command, Option } from 'commander';
import { ApiError, InputError } from './api.ts';
import { addKeyCommands } from './commands/keys.ts';
import { addQaCommands } from './commands/qa.ts';
import { addSessionCommands } from './commands/session.ts';
import { addShotCommands } from './commands/shots.ts';
import { addSubmitCommand } from './commands/submit.ts';
import { addWebhookCommands } from './commands/webhooks.ts';
import { DEFAULT_API, readConfig, type CliConfig } from './config.ts';
import { createContext, defaultIo, EXIT, type CliIo } from './context.ts';
import { CommandError } from './follow.ts';
import { errorText } from './format.ts';

export type { CliIo } from './context.ts';

export function buildProgram(cfg: CliConfig, io: CliIo = defaultIo): { program: Command; exitCode: () => number } {
  const program = new Command('celfarm')
    .description('Submit shots to a celfarm render farm, follow them, review their frames, download outputs, manage API keys and webhooks.')
    .addOption(new Option('--api <url>', `API base URL (env CELFARM_API, default ${DEFAULT_API})`))
    .addOption(new Option('--key <token>', 'API key, sent as a bearer token (env CELFARM_KEY)'))
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `\nExit status: ${EXIT.OK} success; ${EXIT.FAILED} a failure (a shot failed or was cancelled, a 5xx, an unreachable API, a timeout);\n` +
        `${EXIT.BAD_INPUT} bad input (a 4xx answer, a bad flag, knob or file); ${EXIT.WARNINGS} submit --strict: the settings came back with warnings.\n`,
    )
    // Set before the subcommands are added: they copy these settings when created.
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  const ctx = createContext(cfg, io);
  addSubmitCommand(program, ctx);
  addShotCommands(program, ctx);
  addQaCommands(program, ctx);
  addKeyCommands(program, ctx);
  addWebhookCommands(program, ctx);
  addSessionCommands(program, ctx);
  return { program, exitCode: ctx.exitCode };
}

/** Runs the CLI; resolves with the exit status. API and input errors print one line, never a stack. */
export async function main(argv = process.argv, cfg: CliConfig = readConfig(), io: CliIo = defaultIo): Promise<number> {
  const { program, exitCode } = buildProgram(cfg, io);
  try {
    await program.parseAsync(argv);
    return exitCode();
  } catch (e) {
    if (e instanceof ApiError) {
      io.err(`error ${errorText(e)}\n`);
      return e.status >= 400 && e.status < 500 ? EXIT.BAD_INPUT : EXIT.FAILED;
    }
    if (e instanceof InputError) {
      io.err(`error ${errorText(e)}\n`);
      return EXIT.BAD_INPUT;
    }
    if (e instanceof CommandError) {
      io.err(`error ${errorText(e)}\n`);
      return EXIT.FAILED;
    }
    const ce = e as { code?: string; exitCode?: number };
    // Commander has printed its message; help and version exit 0, usage errors 2.
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return ce.exitCode === 0 ? EXIT.OK : EXIT.BAD_INPUT;
    io.err(`error: ${(e as Error).message}\n`);
    return EXIT.FAILED;
  }
}
