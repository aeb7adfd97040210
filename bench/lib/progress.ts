// One status line on stderr while a benchmark runs: rewritten in place (with the elapsed
// seconds ticking) on a terminal, one line per step otherwise (CI logs).
export interface Progress {
  (step: string): void;
  /** Ends the status line (a newline on a terminal). */
  done(): void;
}

export function progressLine(t0 = Date.now()): Progress {
  const tty = process.stderr.isTTY;
  let step = '';
  const show = () => {
    const line = `[${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s] ${step}`;
    process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
  };
  const ticker = tty ? setInterval(show, 1000) : undefined;
  ticker?.unref();
  const p = ((s: string) => {
    step = s;
    show();
  }) as Progress;
  p.done = () => {
    if (tty) process.stderr.write('\n');
  };
  return p;
}
