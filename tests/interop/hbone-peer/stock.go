// -inbound-stock: the inbound side on Go's own http2.Server, written as a Go CONNECT proxy
// usually is: the handler copies upstream -> response and returns when upstream ends. If
// the client's direction is still open then, Go's server ends the stream with END_STREAM
// followed by RST_STREAM(NO_ERROR) (x/net/http2 server.go, "Section 8.1: a server MAY
// request that the client abort transmission ... RST_STREAM with NO_ERROR"): the ending
// that ztunnel's h2.rs reads as a clean end of data and that mtun must too. Same TLS,
// authority check, windows and statuses as server.go.
package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// What a handler needs of its connection. (Go leaves r.TLS nil for CONNECT: it sets it
// only for :scheme https, which a CONNECT has none of.)
type connKey struct{}
type connInfo struct {
	orig netip.AddrPort
	tls  tls.ConnectionState
}

func serveInboundStock(ln net.Listener, id *identity, trustDomain string) {
	srv := &http2.Server{MaxConcurrentStreams: maxStreams, MaxReadFrameSize: maxFrame,
		MaxUploadBufferPerStream: streamWindow, MaxUploadBufferPerConnection: connWindow}
	acceptTLS(ln, id, trustDomain, func(tc *tls.Conn, orig netip.AddrPort) {
		ctx := context.WithValue(context.Background(), connKey{}, &connInfo{orig, tc.ConnectionState()})
		srv.ServeConn(tc, &http2.ServeConnOpts{Context: ctx, Handler: http.HandlerFunc(stockConnect)})
	})
}

func stockConnect(w http.ResponseWriter, r *http.Request) {
	ci := r.Context().Value(connKey{}).(*connInfo)
	orig := ci.orig
	entry := map[string]any{"msg": "tunnel", "direction": "inbound", "impl": "stock", "authority": r.Host,
		"sni": ci.tls.ServerName, "peer": spiffeOf(ci.tls.PeerCertificates[0]), "orig_dst": orig.String()}
	defer func() { logJSON(entry) }()
	target, err := netip.ParseAddrPort(r.Host)
	if r.Method != http.MethodConnect || err != nil || target.Addr() != orig.Addr() {
		entry["status"] = 400
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	up, err := net.DialTimeout("tcp", target.String(), 10*time.Second)
	if err != nil {
		entry["status"] = 503
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer up.Close()
	entry["status"] = 200
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	var requestEnded atomic.Bool
	go func() {
		io.Copy(up, r.Body)
		requestEnded.Store(true)
		up.(*net.TCPConn).CloseWrite()
	}()
	n, _ := io.Copy(flushWriter{w}, up)
	entry["bytes_to_client"] = n
	// Returning now with the request still open is what makes Go add RST_STREAM(NO_ERROR).
	entry["returned_before_request_end"] = !requestEnded.Load()
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.w.(http.Flusher).Flush()
	return n, err
}
