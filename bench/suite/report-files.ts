// Writes a run's report files: the Markdown (machine description, table, targets), the JSON
// with every raw sample, and the SVG chart; prints the Markdown. The machine description is
// read here (the only I/O of the report).
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { svg } from './chart.js';
import { markdown, type RunResult } from './report.js';

function machine(): Record<string, string> {
  const sh = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')[0]!
        .trim();
    } catch (err) {
      const e = err as { stderr?: string };
      return (e.stderr ?? '').split('\n')[0]?.trim() || 'not installed';
    }
  };
  return {
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    kernel: release(),
    node: process.version,
    openssl: process.versions.openssl ?? '?',
    stunnel: sh('sh', ['-c', 'stunnel4 -version 2>&1 | grep -m1 "^stunnel"']),
    haproxy: sh('/usr/sbin/haproxy', ['-v']),
    nginx: sh('sh', ['-c', 'nginx -v 2>&1']),
  };
}

export async function writeReport(run: RunResult, prefix?: string): Promise<void> {
  run.machine = machine();
  const stem =
    prefix ??
    `bench/results/${run.mode}-${run.net ?? 'loopback'}-${run.startedAt.replace(/[:.]/g, '-')}`;
  await mkdir(stem.replace(/\/[^/]*$/, '') || '.', { recursive: true });
  const md = markdown(run);
  await writeFile(`${stem}.md`, md);
  await writeFile(`${stem}.json`, JSON.stringify(run));
  await writeFile(`${stem}.svg`, svg(run));
  console.log(md);
  console.log(`wrote ${stem}.md, ${stem}.json (raw samples), ${stem}.svg (chart)`);
}
