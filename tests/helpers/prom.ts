// Reading Prometheus text exposition in tests: samples of one metric with their labels, and
// the sum over those whose labels include a given subset. Enough for counters and gauges.

export interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Every sample of `name` (exactly that name, not its _bucket/_sum relatives). */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of `name` over samples whose labels include `where`. */
export function total(text: string, name: string, where: Record<string, string> = {}): number {
  return samples(text, name)
    .filter((s) => Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** Istio's TCP counters of the connections whose labels include `where`. */
export function tcpCounters(text: string, where: Record<string, string>) {
  return {
    received: total(text, 'istio_tcp_received_bytes_total', where),
    sent: total(text, 'istio_tcp_sent_bytes_total', where),
    closed: total(text, 'istio_tcp_connections_closed_total', where),
  };
}
