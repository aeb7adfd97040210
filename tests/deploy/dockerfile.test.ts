// The Dockerfile without a container engine: its instructions parsed (stages, every COPY
// source present and not excluded by .dockerignore, --from naming a stage), then the build
// stage's own COPY and RUN steps executed in a temporary directory standing for /app, and
// the runtime stage's layout assembled from what they produced and started: the CLI runs
// from production dependencies only and the native addon loads.

import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import t from 'tap';
import { run } from '../../testkit/exec.js';
import { tempDir } from '../helpers/tmp.js';

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: string;
}

function parse(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = '';
  // Join continuation lines; drop comments and blank lines.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)$/i.exec(args!)?.[1] ?? '';
    out.push({ op: op!.toUpperCase(), args: args!.trim(), stage });
  }
  return out;
}

// npm ci, node-gyp and tsc on a 2-core CI machine can pass the default 120 s per file.
t.setTimeout(600_000);

const dockerfile = parse(readFileSync('Dockerfile', 'utf8'));
const ignored = readFileSync('.dockerignore', 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** COPY [--from=x] src... dest */
function copyOf(i: Instruction): { from?: string; srcs: string[]; dest: string } {
  const words = i.args.split(/\s+/);
  const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
  const dest = words.pop()!;
  return { ...(from ? { from } : {}), srcs: words, dest };
}

t.test('stages and COPY sources are sound', async (t) => {
  const froms = dockerfile.filter((i) => i.op === 'FROM');
  t.same(
    froms.map((f) => f.stage),
    ['build', 'runtime'],
    'a build stage and a runtime stage',
  );
  t.match(froms[0]!.args, /^node:20-bookworm /, 'build on Node 20 with a toolchain');
  t.match(froms[1]!.args, /^node:20-bookworm-slim /, 'run on the slim image');
  for (const i of dockerfile.filter((x) => x.op === 'COPY')) {
    const c = copyOf(i);
    if (c.from) {
      t.ok(
        froms.some((f) => f.stage === c.from && dockerfile.indexOf(f) < dockerfile.indexOf(i)),
        `--from=${c.from} is an earlier stage`,
      );
      continue;
    }
    for (const src of c.srcs) {
      t.ok(existsSync(src), `${src} exists`);
      t.notOk(
        ignored.some((p) => src.replace(/\/$/, '') === p || src.startsWith(`${p}/`)),
        `${src} is not in .dockerignore`,
      );
    }
  }
  const last = dockerfile.filter((i) => i.stage === 'runtime');
  t.ok(
    last.some((i) => i.op === 'USER' && !/^0\b|^root\b/.test(i.args)),
    'runtime user is not root',
  );
  t.ok(
    last.some((i) => i.op === 'RUN' && /apt-get install .*iptables/.test(i.args)),
    'iptables in the runtime image',
  );
  t.ok(
    last.some((i) => i.op === 'RUN' && /rm -rf \/var\/lib\/apt\/lists/.test(i.args)),
    'apt lists removed',
  );
});

/** A clean environment, as in a container build: no tap or tsx loaders via NODE_OPTIONS. */
const clean = ['-i', `PATH=${process.env['PATH']}`, `HOME=${process.env['HOME']}`];

const hasCc =
  (await run('sh', ['-c', 'command -v cc && command -v make && command -v python3'])).code === 0;

t.test(
  "the build stage's steps run, and the runtime layout starts",
  {
    skip: hasCc ? false : 'needs cc, make and python3 (the build stage has them)',
    timeout: 600_000,
  },
  async (t) => {
    const app = await tempDir(t, 'mtun-docker-build-');
    for (const i of dockerfile.filter((x) => x.stage === 'build')) {
      if (i.op === 'WORKDIR') t.equal(i.args, '/app');
      if (i.op === 'COPY') {
        const c = copyOf(i);
        for (const src of c.srcs) {
          const dest = c.dest.endsWith('/')
            ? c.srcs.length > 1 || !src.endsWith('/')
              ? join(app, c.dest, src)
              : join(app, c.dest)
            : join(app, c.dest);
          await mkdir(dirname(dest), { recursive: true });
          await cp(src, dest, { recursive: true });
        }
      }
      if (i.op === 'RUN') {
        // --prefer-offline: CI's own `npm ci` filled the cache; the registry is the fallback.
        const cmd = i.args.replace(/\bnpm ci\b/, 'npm ci --prefer-offline');
        const res = await run('env', [...clean, 'sh', '-c', cmd], { cwd: app, timeoutMs: 300_000 });
        t.equal(res.code, 0, `RUN ${i.args}\n${res.stderr.slice(-2000)}`);
        if (res.code !== 0) return;
      }
    }
    // The runtime stage: only what it copies from the build stage.
    const image = await tempDir(t, 'mtun-docker-image-');
    for (const i of dockerfile.filter((x) => x.stage === 'runtime' && x.op === 'COPY')) {
      const c = copyOf(i);
      if (c.from !== 'build') continue;
      for (const src of c.srcs) {
        const from = join(app, src.replace(/^\/app\//, ''));
        t.ok(existsSync(from), `${src} was built`);
        const dest =
          c.dest.endsWith('/') && !src.endsWith('/')
            ? join(image, c.dest, src.split('/').pop()!)
            : join(image, c.dest);
        await mkdir(dirname(dest), { recursive: true });
        await cp(from, dest, { recursive: true });
      }
    }
    t.notOk(existsSync(join(image, 'node_modules/tap')), 'dev dependencies pruned');
    t.ok(
      existsSync(join(image, 'node_modules/@kubernetes/client-node')),
      'runtime dependencies kept',
    );
    const main = join(image, 'dist/cli/main.js');
    for (const cmd of ['ca', 'agent']) {
      const res = await run('env', [...clean, process.execPath, main, cmd, '--help'], {
        cwd: image,
      });
      t.equal(res.code, 0, `mtun ${cmd} --help from the image layout: ${res.stderr}`);
      t.match(res.stdout, /--mesh-source/);
    }
    const addon = await run(
      'env',
      [
        ...clean,
        process.execPath,
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(join(image, 'dist/agent/capture/native.js'))}); const c = m.loadCapture(); console.log(JSON.stringify(c));`,
      ],
      { cwd: image },
    );
    t.match(addon.stdout, /"available":true/, `the addon loads: ${addon.stdout}${addon.stderr}`);
    const pkg = JSON.parse(await readFile(join(image, 'package.json'), 'utf8'));
    t.equal(pkg.name, 'mtun');
  },
);
