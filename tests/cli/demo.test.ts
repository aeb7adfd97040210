// `mtun demo --once` as a newcomer runs it: the whole local mesh, the scenario, exit 0.
import t from 'tap';
import { run } from '../../testkit/exec.js';
import { MTUN_CLI } from '../../testkit/process.js';
import { demoMapPage, noBrowser } from './demo-map-page.js';

t.test('mtun demo --once meets every expectation', async (t) => {
  const res = await run(
    process.execPath,
    [...MTUN_CLI, 'demo', '--once', '--port-offset', '1000'],
    { timeoutMs: 60_000 },
  );
  t.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
  t.match(res.stdout, /4 of 4 expectations met/);
  t.match(
    res.stdout,
    /caller verified as spiffe:\/\/cluster\.local\/ns\/frontend\/sa\/productpage/,
  );
  t.match(res.stdout, /deny \(policy shop\/deny-frontend-to-ratings\)/);
  t.match(res.stdout, /served by reviews-v[12] ×3, reviews-v[12] ×3/);
});

// In this file, after the one above: both demos bind the same pod addresses.
t.test('the demo map page shows the scenario and updates live', { skip: noBrowser }, demoMapPage);
