// The client: one TLS connection (no SNI, the server's SPIFFE ID checked), one
// http2.ClientConn on it, one CONNECT per -authority, all at once. Request bodies are pipes:
// closing one is END_STREAM while the response body keeps being read.
package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

func runClient(o *options, id *identity) int {
	raw, err := net.DialTimeout("tcp", o.addr, 10*time.Second)
	if err != nil {
		fatal("connect %s: %v", o.addr, err)
	}
	tc := tls.Client(raw, clientConfig(id, o.expect))
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		emit(map[string]any{"msg": "tls-error", "error": err.Error()})
		return 4
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != "h2" {
		emit(map[string]any{"msg": "tls-error", "error": "no ALPN h2"})
		return 4
	}
	emit(tlsReport(st))
	cc, err := (&http2.Transport{DisableCompression: true}).NewClientConn(tc)
	if err != nil {
		fatal("http2: %v", err)
	}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i, a := range o.authorities {
		wg.Add(1)
		go func(seed int, authority string) {
			defer wg.Done()
			if !connect(cc, o, seed, authority) {
				bad.Add(1)
			}
		}(i, a)
	}
	wg.Wait()
	for end := time.Now().Add(time.Duration(o.lingerMs) * time.Millisecond); time.Now().Before(end) && !cc.State().Closed; {
		time.Sleep(10 * time.Millisecond)
	}
	cc.Close()
	emit(map[string]any{"msg": "done", "ok": bad.Load() == 0})
	if bad.Load() != 0 {
		return 1
	}
	return 0
}

// connect runs one CONNECT stream; false when it did not end cleanly both ways.
func connect(cc *http2.ClientConn, o *options, seed int, authority string) bool {
	tx, rx := newTally(), newTally()
	rep := map[string]any{"msg": "stream", "method": "CONNECT", "authority": authority}
	ok := false
	defer func() {
		rep["sent"], rep["sent_sha256"] = tx.n, tx.sum()
		rep["received"], rep["received_sha256"] = rx.n, rx.sum()
		emit(rep)
	}()
	pr, pw := io.Pipe()
	body := &doneBody{Reader: pr, closed: make(chan struct{})}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Host: authority}, Host: authority,
		Header: http.Header{}, Body: body, ContentLength: -1, Proto: "HTTP/2.0", ProtoMajor: 2}
	res, err := cc.RoundTrip(req)
	if err != nil {
		pw.CloseWithError(err)
		rep["error"] = err.Error()
		return false
	}
	rep["status"] = res.StatusCode
	if res.StatusCode != http.StatusOK {
		// Go's Transport stops our direction itself on a status > 299 (it resets the stream).
		pw.Close()
		_, err := io.Copy(io.Discard, res.Body)
		rep["peer_end"] = err == nil
		res.Body.Close()
		return true
	}
	rxDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(rx, res.Body)
		rxDone <- err
	}()
	var rxErr error
	gotRx := false
	if o.afterEOF {
		rxErr, gotRx = <-rxDone, true
	}
	if err := send(pw, nil, newGenerator(seed), tx, o.send); err != nil {
		pw.CloseWithError(err) // the Transport resets the stream (CANCEL)
		rep["error"] = "send: " + err.Error()
	} else {
		pw.Close() // END_STREAM
		ok = true
	}
	if !gotRx {
		rxErr = <-rxDone
	}
	rep["peer_end"] = rxErr == nil
	if rxErr != nil {
		rep["error"] = "receive: " + rxErr.Error()
		ok = false
	}
	// Closing the response body before the Transport wrote our END_STREAM would reset the
	// stream: it closes the request body once it is done with it.
	<-body.closed
	res.Body.Close()
	return ok
}

// doneBody tells when the Transport is finished with the request body.
type doneBody struct {
	io.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *doneBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	if c, ok := b.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
