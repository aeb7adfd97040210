// `mtun ca`: placeholder filled in by the CA work.
import type { Command } from 'commander';

export function registerCa(program: Command): void {
  program.command('ca').description('run the certificate authority service');
}
