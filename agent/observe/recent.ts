// The last connections this agent recorded, newest last, as evidence for `mtun check` and
// `mtun config connections`: a copy of each access-log line's facts (who, to where, mTLS or
// plaintext, allowed or denied, why), taken at the record-once point. Bounded: a ring of
// `max` entries, so a busy node costs a fixed amount of memory.
import type { AccessLogSink } from './record.js';

export interface RecentConnection {
  /** When the connection ended (ISO-8601). */
  readonly at: string;
  readonly direction: 'inbound' | 'outbound';
  readonly src: string | undefined;
  readonly dst: string | undefined;
  /** The tunnel's address when the connection crossed HBONE. */
  readonly hboneAddr: string | undefined;
  readonly srcWorkload: string | undefined;
  readonly srcNamespace: string | undefined;
  readonly srcIdentity: string | undefined;
  readonly dstWorkload: string | undefined;
  readonly dstNamespace: string | undefined;
  readonly dstIdentity: string | undefined;
  readonly dstService: string | undefined;
  readonly security: 'mutual_tls' | 'none';
  readonly verdict: 'allow' | 'deny' | undefined;
  readonly policy: string | undefined;
  readonly reason: string | undefined;
  readonly error: string | undefined;
  /** Plaintext from a mesh pod: its node's capture was bypassed (agent/observe/bypass.ts). */
  readonly captureBypass: boolean;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export class RecentConnections {
  readonly #max: number;
  readonly #ring: RecentConnection[] = [];
  #next = 0;

  constructor(max = 256) {
    this.#max = max;
  }

  add(line: Readonly<Record<string, unknown>>, now = new Date()): void {
    const entry: RecentConnection = {
      at: now.toISOString(),
      direction: line.direction === 'outbound' ? 'outbound' : 'inbound',
      // With HBONE, dst.addr is the tunnel's address and dst.hbone_addr the target.
      src: str(line['src.addr']),
      dst: str(line['dst.hbone_addr']) ?? str(line['dst.addr']),
      hboneAddr: str(line['dst.hbone_addr']) ? str(line['dst.addr']) : undefined,
      srcWorkload: str(line['src.workload']),
      srcNamespace: str(line['src.namespace']),
      srcIdentity: str(line['src.identity']),
      dstWorkload: str(line['dst.workload']),
      dstNamespace: str(line['dst.namespace']),
      dstIdentity: str(line['dst.identity']),
      dstService: str(line['dst.service']),
      security: line.security === 'mutual_tls' ? 'mutual_tls' : 'none',
      verdict: line.verdict === 'allow' || line.verdict === 'deny' ? line.verdict : undefined,
      policy: str(line.policy),
      reason: str(line.reason),
      error: str(line.error_code),
      captureBypass: line.capture_bypass === true,
    };
    if (this.#ring.length < this.#max) this.#ring.push(entry);
    else this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#max;
  }

  /** Oldest first. */
  list(): RecentConnection[] {
    return this.#ring.length < this.#max
      ? [...this.#ring]
      : [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  /** A sink that writes to `sink` and keeps a copy here. */
  tee(sink: AccessLogSink): AccessLogSink {
    return {
      write: (line, level) => {
        this.add(line);
        sink.write(line, level);
      },
    };
  }
}
