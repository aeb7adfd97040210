// One build per run: the agents and the CA run from a copy of dist/ (with package.json,
// binding.gyp and the native addon, node_modules linked) made when the run starts, so that
// another engineer rebuilding dist/ meanwhile cannot change the code under test between
// rounds (netns mode restarts the agents). The copy lives in the run's temp dir.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, cp, mkdir, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** The snapshot's root (pass it to procs.ts mtun()), or undefined without a dist/. */
export async function snapshotBuild(dir: string): Promise<string | undefined> {
  if (!existsSync('dist/cli/main.js')) return undefined;
  const root = join(dir, 'mtun-build');
  await mkdir(join(root, 'build', 'Release'), { recursive: true });
  await cp('dist', join(root, 'dist'), { recursive: true });
  for (const f of ['package.json', 'binding.gyp']) await copyFile(f, join(root, f));
  const addon = join('build', 'Release', 'mtun_native.node');
  if (existsSync(addon)) await copyFile(addon, join(root, addon));
  await symlink(resolve('node_modules'), join(root, 'node_modules'));
  return root;
}

/** Which code ran: the commit and when dist/ was last written (its newest file). */
export function describeBuild(): string {
  let head = '?';
  try {
    head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {}
  if (!existsSync('dist')) return `HEAD ${head}, no dist/ (sources via tsx)`;
  let newest = 0;
  for (const f of readdirSync('dist', { recursive: true }))
    newest = Math.max(newest, statSync(join('dist', String(f))).mtimeMs);
  return `HEAD ${head}, dist/ built ${new Date(newest).toISOString()}`;
}
