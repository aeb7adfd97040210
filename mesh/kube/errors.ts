// How talking to the Kubernetes API fails: one class, a stable code per kind of failure,
// the HTTP status and the API's own Status reason when the server answered.
import { MtunError } from '../../lib/errors.js';

export type KubeErrorCode =
  /** The server answered with a non-success status (see `status` and `reason`). */
  | 'KUBE_HTTP'
  /** No answer in time. */
  | 'KUBE_TIMEOUT'
  /** Connection refused, reset, TLS failure, or the stream broke. */
  | 'KUBE_TRANSPORT'
  /** An answer or a watch line over our size limit. */
  | 'KUBE_TOO_LARGE'
  /** An answer that is not the JSON we expected. */
  | 'KUBE_BAD_RESPONSE'
  /** The initial list of every resource did not complete in time. */
  | 'KUBE_NOT_SYNCED';

export class KubeError extends MtunError {
  declare readonly code: KubeErrorCode;
  /** HTTP status, or the `code` of a watch ERROR event's Status. */
  readonly status: number | undefined;
  /** `reason` of the API's Status object (Expired, Gone, NotFound, AlreadyExists, ...). */
  readonly reason: string | undefined;

  constructor(
    code: KubeErrorCode,
    message: string,
    opts: { status?: number; reason?: string; cause?: unknown } = {},
  ) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status;
    this.reason = opts.reason;
  }

  /** 410 Gone / Expired: the resourceVersion we hold is compacted away; only a re-list helps. */
  get gone(): boolean {
    return this.status === 410 || this.reason === 'Expired' || this.reason === 'Gone';
  }
}
