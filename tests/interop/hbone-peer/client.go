// The outbound side, on Go's own HTTP/2 client (http2.Transport / ClientConn): what a
// ztunnel node does with a captured connection (src/proxy/outbound.rs): the original
// destination from SO_ORIGINAL_DST; TLS to that pod's IP:15008 with no SNI, presenting our
// workload certificate and requiring the pod's SPIFFE identity; CONNECT with
// :authority = pod ip:port and ztunnel's headers (forwarded, traceparent, baggage); the
// captured connection piped through with half-close both ways (our FIN -> END_STREAM, the
// server's END_STREAM -> CloseWrite while we keep sending). One HTTP/2 connection per
// destination is reused while it takes streams (ztunnel pool.rs keys on identities and
// address; here there is one source identity).
package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

type dialer struct {
	id      *identity
	peers   map[string]string
	baggage string
	tr      *http2.Transport
	// misdirect (tests only) rewrites the CONNECT authority of some original destinations.
	misdirect map[string]string

	mu   sync.Mutex
	pool map[string]*http2.ClientConn
}

func newDialer(id *identity, peers map[string]string, baggage string) *dialer {
	return &dialer{id: id, peers: peers, baggage: baggage, pool: map[string]*http2.ClientConn{},
		// ztunnel h2/client.rs: frames up to 1 MiB, header list 16 KiB, PING every 10 s with a
		// 20 s timeout. (Go's client window is fixed at 4 MiB per stream, ztunnel's value;
		// its connection window, 1 GiB, is not settable in this x/net.)
		tr: &http2.Transport{MaxReadFrameSize: 1 << 20, MaxHeaderListSize: 16 << 10,
			ReadIdleTimeout: 10 * time.Second, PingTimeout: 20 * time.Second, DisableCompression: true}}
}

func serveOutbound(ln net.Listener, d *dialer) {
	for {
		c, err := ln.Accept()
		if err != nil {
			fatal("outbound accept: %v", err)
		}
		go d.proxy(c.(*net.TCPConn))
	}
}

// conn returns a pooled HTTP/2 connection to ip:15008 that takes another stream, or dials one.
func (d *dialer) conn(dst netip.Addr, expected string) (*http2.ClientConn, string, error) {
	key := netip.AddrPortFrom(dst, 15008).String()
	d.mu.Lock()
	if cc := d.pool[key]; cc != nil && cc.CanTakeNewRequest() {
		d.mu.Unlock()
		return cc, key, nil
	}
	d.mu.Unlock()
	raw, err := net.DialTimeout("tcp", key, 10*time.Second)
	if err != nil {
		return nil, key, err
	}
	tc := tls.Client(raw, clientConfig(d.id, expected))
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, key, fmt.Errorf("TLS: %w", err)
	}
	tc.SetDeadline(time.Time{})
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return nil, key, fmt.Errorf("ALPN %q, want h2", p)
	}
	cc, err := d.tr.NewClientConn(tc)
	if err != nil {
		tc.Close()
		return nil, key, err
	}
	d.mu.Lock()
	d.pool[key] = cc
	d.mu.Unlock()
	return cc, key, nil
}

// traceparent as ztunnel writes a new one per connection (W3C: version 00, sampled).
func traceparent() string {
	b := make([]byte, 24)
	rand.Read(b)
	return fmt.Sprintf("00-%s-%s-01", hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:]))
}

func (d *dialer) proxy(down *net.TCPConn) {
	defer down.Close()
	start := time.Now()
	entry := map[string]any{"msg": "tunnel", "direction": "outbound", "src": down.RemoteAddr().String()}
	defer func() { entry["duration_ms"] = time.Since(start).Milliseconds(); logJSON(entry) }()
	orig, err := originalDst(down)
	if err != nil {
		entry["error"] = "SO_ORIGINAL_DST: " + err.Error()
		return
	}
	authority := orig.String()
	if to, ok := d.misdirect[authority]; ok {
		entry["misdirected_from"] = authority
		authority = to
	}
	entry["authority"] = authority
	expected, ok := d.peers[orig.Addr().String()]
	if !ok {
		entry["error"] = "no HBONE peer known for " + orig.Addr().String()
		return
	}
	cc, via, err := d.conn(orig.Addr(), expected)
	entry["via"], entry["peer"] = via, expected
	if err != nil {
		entry["error"] = err.Error()
		return
	}
	pr, feed := io.Pipe()
	body := &doneBody{Reader: pr, closed: make(chan struct{})}
	hdr := http.Header{}
	hdr.Set("forwarded", fmt.Sprintf("for=%q", down.RemoteAddr().String()))
	hdr.Set("traceparent", traceparent())
	if d.baggage != "" {
		hdr.Set("baggage", d.baggage)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Host: authority}, Host: authority,
		Header: hdr, Body: body, ContentLength: -1, Proto: "HTTP/2.0", ProtoMajor: 2}
	res, err := cc.RoundTrip(req)
	if err != nil {
		feed.CloseWithError(err)
		entry["error"] = err.Error()
		return
	}
	entry["status"] = res.StatusCode
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		feed.CloseWithError(fmt.Errorf("status %d", res.StatusCode))
		down.SetLinger(0) // the client sees the refusal as a reset, as from ztunnel
		return
	}
	var up int64
	upDone := make(chan error, 1)
	go func() {
		n, err := io.Copy(feed, down)
		up = n
		if err != nil {
			feed.CloseWithError(err) // the stream is reset (CANCEL)
		} else {
			feed.Close() // END_STREAM
		}
		upDone <- err
	}()
	n, derr := io.Copy(down, res.Body)
	entry["bytes_received"] = n
	if derr == nil {
		down.CloseWrite() // the server's END_STREAM: a FIN, our direction stays open
	} else {
		down.SetLinger(0)
		down.Close()
	}
	// Closing the response body before the Transport has sent all of our direction (it
	// closes the request body only after END_STREAM went out) would reset the stream.
	uerr := <-upDone
	<-body.closed
	entry["bytes_sent"] = up
	res.Body.Close()
	if derr != nil || uerr != nil {
		entry["error"] = fmt.Sprint(derr, " / ", uerr)
	}
}

// doneBody tells when the Transport is finished with the request body: it closes it after
// the body's last DATA frame and END_STREAM were written (cleanupWriteRequest), or on abort.
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
