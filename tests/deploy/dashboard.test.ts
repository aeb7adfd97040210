// The Grafana dashboard shipped under deploy/grafana asks only for what an agent exports:
// every metric it queries exists in an agent's registry, and every label it selects or
// groups by is one of those metrics' labels (or `pod`, which Prometheus adds when it scrapes).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { AgentMetrics } from '../../agent/observe/metrics.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(readFileSync('deploy/grafana/mtun-dashboard.json', 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; definition?: string }[] };
};

const metrics = new AgentMetrics({ processMetrics: true });
t.teardown(() => metrics.close());

t.test('every query names exported metrics and their labels', async (t) => {
  const exported = new Map<string, Set<string>>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const labels = new Set<string>(['pod']);
    for (const v of m.values) for (const k of Object.keys(v.labels)) labels.add(k);
    // Labels of metrics that have no sample yet: from their declaration.
    const declared = (metrics.registry.getSingleMetric(m.name) as { labelNames?: string[] })
      ?.labelNames;
    for (const k of declared ?? []) labels.add(k);
    exported.set(m.name, labels);
  }
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr));
  exprs.push(...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])));
  t.ok(exprs.length >= 15, `${exprs.length} queries`);
  for (const expr of exprs) {
    const names = [...expr.matchAll(/\b((?:istio|mtun|process|nodejs)_[a-z0-9_]+)/g)].map(
      (m) => m[1]!,
    );
    t.ok(names.length > 0, `a metric in ${expr}`);
    const labels = new Set<string>();
    for (const n of names) {
      t.ok(exported.has(n), `${n} is exported`);
      for (const l of exported.get(n) ?? []) labels.add(l);
    }
    const used = [
      ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',')),
      ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
        [...m[1]!.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!),
      ),
    ]
      .map((s) => s.trim())
      .filter(Boolean);
    for (const l of used) t.ok(labels.has(l), `label ${l} exists on ${names.join(', ')}`);
  }
});

t.test('panels say what they show', async (t) => {
  t.equal(dashboard.uid, 'mtun-agent');
  const titles = dashboard.panels.filter((p) => p.type !== 'row').map((p) => p.title);
  for (const want of ['Versions', 'Memory usage', 'CPU usage', 'Connections', 'Bytes transmitted'])
    t.ok(titles.includes(want), `has ${want}, as ztunnel's dashboard`);
});
