// The server: Go's http2.Server on each mutually authenticated TLS connection, one handler
// per CONNECT: 405 for other methods, 400 unless :authority is IP:PORT with the IP this
// connection was dialed on, 401 for -deny-port, else 200 and the exchange (main.go).
package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

func runServer(o *options, id *identity) {
	ln, err := net.Listen("tcp", net.JoinHostPort(o.addr, "0"))
	if err != nil {
		fatal("listen %s: %v", o.addr, err)
	}
	emit(map[string]any{"msg": "listening", "port": ln.Addr().(*net.TCPAddr).Port})
	srv := &http2.Server{}
	cfg := serverConfig(id, o.trustDomain)
	var seeds atomic.Int32
	for {
		c, err := ln.Accept()
		if err != nil {
			fatal("accept: %v", err)
		}
		go func() {
			defer c.Close()
			tc := tls.Server(c, cfg)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				emit(map[string]any{"msg": "tls-error", "error": err.Error()})
				return
			}
			if tc.ConnectionState().NegotiatedProtocol != "h2" {
				emit(map[string]any{"msg": "tls-error", "error": "no ALPN h2"})
				return
			}
			emit(tlsReport(tc.ConnectionState()))
			tc.SetDeadline(time.Now().Add(time.Duration(o.timeoutS) * time.Second)) // a bound on the whole connection
			local := c.LocalAddr().(*net.TCPAddr).IP.String()
			srv.ServeConn(tc, &http2.ServeConnOpts{Handler: http.HandlerFunc(
				func(w http.ResponseWriter, r *http.Request) {
					handle(o, local, int(seeds.Add(1)-1), w, r)
				})})
			emit(map[string]any{"msg": "closed"})
		}()
	}
}

func handle(o *options, local string, seed int, w http.ResponseWriter, r *http.Request) {
	tx, rx := newTally(), newTally()
	rep := map[string]any{"msg": "stream", "method": r.Method, "authority": r.Host}
	gotRx := false
	defer func() {
		rep["sent"], rep["sent_sha256"] = tx.n, tx.sum()
		if gotRx { // with -end-early the request may still be arriving: nothing to report
			rep["received"], rep["received_sha256"] = rx.n, rx.sum()
		}
		emit(rep)
	}()
	host, port, err := net.SplitHostPort(r.Host)
	p, _ := strconv.Atoi(port)
	status := http.StatusOK
	switch {
	case r.Method != http.MethodConnect:
		status = http.StatusMethodNotAllowed
	case err != nil || host != local || p <= 0:
		status = http.StatusBadRequest
	case p == o.denyPort:
		status = http.StatusUnauthorized
	}
	rep["status"] = status
	w.WriteHeader(status)
	if status != http.StatusOK {
		return
	}
	flusher := w.(http.Flusher)
	flusher.Flush()
	rxDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(rx, r.Body)
		rxDone <- err
	}()
	var rxErr error
	if o.afterEOF {
		rxErr, gotRx = <-rxDone, true
	}
	if err := send(w, flusher.Flush, newGenerator(seed), tx, o.send); err != nil {
		rep["error"] = "send: " + err.Error()
	}
	if !gotRx && !o.endEarly {
		rxErr, gotRx = <-rxDone, true
	}
	rep["returned_before_request_end"] = !gotRx
	if gotRx {
		rep["peer_end"] = rxErr == nil
		if rxErr != nil {
			rep["error"] = "receive: " + rxErr.Error()
		}
	}
}
