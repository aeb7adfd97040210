#!/usr/bin/env node
// The `mtun` command: wiring only. Each subcommand lives in its own file and registers
// itself on the program; nothing here holds logic of its own.
import { Command } from 'commander';
import { MTUN_VERSION } from '../agent/observe/build.js';
import { registerAgent } from './agent.js';
import { registerAuthz } from './authz.js';
import { registerCa } from './ca.js';
import { registerCheck } from './check.js';
import { registerConfig } from './config.js';
import { registerDemo } from './demo.js';
import { registerMap } from './map.js';

export function buildProgram(): Command {
  const program = new Command('mtun')
    .description('Userspace L4 mTLS node agent: HBONE tunnels, SPIFFE identities, Istio L4 policy')
    .version(MTUN_VERSION)
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true })
    // Usage errors exit 2 (bad input), like every other input error of mtun.
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  registerAuthz(program);
  registerAgent(program);
  registerCa(program);
  registerDemo(program);
  registerConfig(program);
  registerCheck(program);
  registerMap(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.stderr.write(`mtun: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  });
