// The error listener for sockets and streams whose failures are reported another way (their
// 'close' handler, an outcome callback). One shared function on purpose: an arrow written at
// the call site would keep that function's whole scope (buffers, timers, requests) alive for
// as long as the socket lives, which, multiplied by every idle tunnel, is real memory.
export function ignoreError(): void {}
