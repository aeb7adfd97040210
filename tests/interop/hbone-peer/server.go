// The inbound HBONE server, on x/net/http2's Framer and HPACK. Go's http2.Server cannot
// serve HBONE as ztunnel does: a handler can end its response (END_STREAM) only by
// returning, and returning while the client still sends makes it add RST_STREAM(NO_ERROR)
// (RFC 9113 §8.1), which cuts the client's direction. ztunnel ends its side on the TCP
// peer's FIN and keeps reading (src/proxy/h2.rs poll_shutdown: an empty DATA with
// END_STREAM), so this server drives the frames itself:
//
//	CONNECT -> check authority (400) -> dial (503) -> 200 -> copy both ways:
//	  DATA from the client  -> upstream TCP; END_STREAM -> CloseWrite; WINDOW_UPDATE as written
//	  upstream TCP -> DATA within the peer's windows; FIN -> empty DATA with END_STREAM
//	  RST_STREAM from the client -> upstream closed with RST (SO_LINGER 0)
//
// Settings are ztunnel's (src/proxy/h2/server.rs, src/config.rs): stream window 4 MiB,
// connection window 16 MiB, frames up to 1 MiB, 200 concurrent streams, header list 64 KiB.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
	maxFrame     = 1 << 20
	maxStreams   = 200
	maxHeaders   = 65536
)

// acceptTLS accepts redirected connections, finishes each mutual TLS handshake within 10 s
// (a failure is logged and closed) and hands the connection and its original destination
// to serve, one goroutine each: the loop both inbound modes share.
func acceptTLS(ln net.Listener, id *identity, trustDomain string, serve func(*tls.Conn, netip.AddrPort)) {
	cfg := serverConfig(id, trustDomain)
	for {
		c, err := ln.Accept()
		if err != nil {
			fatal("inbound accept: %v", err)
		}
		go func() {
			orig, err := originalDst(c)
			if err != nil { // not redirected: the address it was sent to
				orig = c.LocalAddr().(*net.TCPAddr).AddrPort()
			}
			tc := tls.Server(c, cfg)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				logJSON(map[string]any{"level": "error", "msg": "inbound handshake", "src": c.RemoteAddr().String(), "error": err.Error()})
				c.Close()
				return
			}
			tc.SetDeadline(time.Time{})
			serve(tc, orig)
		}()
	}
}

func serveInbound(ln net.Listener, id *identity, trustDomain string) {
	acceptTLS(ln, id, trustDomain, func(tc *tls.Conn, orig netip.AddrPort) {
		newServerConn(tc, orig).serve()
	})
}

type serverConn struct {
	tc   *tls.Conn
	orig netip.AddrPort
	peer string
	sni  string
	fr   *http2.Framer

	wmu sync.Mutex // serialises frame writes (and the HPACK encoder)
	bw  *bufio.Writer
	enc *hpack.Encoder
	hb  bytes.Buffer

	mu          sync.Mutex // guards everything below; cond waits for send windows
	cond        *sync.Cond
	connSend    int64
	peerInitWin int64
	peerFrame   int
	streams     map[uint32]*serverStream
	closed      bool
}

type serverStream struct {
	id       uint32
	sendWin  int64
	queue    [][]byte // client -> upstream, bounded by the window we granted
	queued   int64
	inEnd    bool // END_STREAM from the client
	reset    bool // RST_STREAM from the client (or the connection died)
	upstream *net.TCPConn
}

func newServerConn(tc *tls.Conn, orig netip.AddrPort) *serverConn {
	st := tc.ConnectionState()
	s := &serverConn{tc: tc, orig: orig, sni: st.ServerName, connSend: 65535, peerInitWin: 65535, peerFrame: 16384, streams: map[uint32]*serverStream{}}
	s.peer = spiffeOf(st.PeerCertificates[0])
	s.cond = sync.NewCond(&s.mu)
	s.bw = bufio.NewWriterSize(tc, 64<<10)
	s.fr = http2.NewFramer(s.bw, tc)
	s.fr.SetMaxReadFrameSize(maxFrame)
	s.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	s.fr.MaxHeaderListSize = maxHeaders
	s.enc = hpack.NewEncoder(&s.hb)
	return s
}

// write runs one framer write under wmu and flushes.
func (s *serverConn) write(f func(fr *http2.Framer) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := f(s.fr); err != nil {
		return err
	}
	return s.bw.Flush()
}

func (s *serverConn) serve() {
	defer s.shutdown()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(s.tc, preface); err != nil || string(preface) != http2.ClientPreface {
		logJSON(map[string]any{"level": "error", "msg": "inbound: no HTTP/2 preface"})
		return
	}
	s.write(func(fr *http2.Framer) error {
		if err := fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrame},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaders},
		); err != nil {
			return err
		}
		return fr.WriteWindowUpdate(0, connWindow-65535)
	})
	for {
		f, err := s.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(se.StreamID, se.Code) })
				continue
			}
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			s.mu.Lock()
			f.ForeachSetting(func(set http2.Setting) error {
				switch set.ID {
				case http2.SettingInitialWindowSize:
					delta := int64(set.Val) - s.peerInitWin
					s.peerInitWin = int64(set.Val)
					for _, st := range s.streams {
						st.sendWin += delta
					}
				case http2.SettingMaxFrameSize:
					s.peerFrame = int(set.Val)
				}
				return nil
			})
			s.cond.Broadcast()
			s.mu.Unlock()
			s.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
		case *http2.MetaHeadersFrame:
			s.onHeaders(f)
		case *http2.DataFrame:
			s.onData(f)
		case *http2.WindowUpdateFrame:
			s.mu.Lock()
			if f.StreamID == 0 {
				s.connSend += int64(f.Increment)
			} else if st := s.streams[f.StreamID]; st != nil {
				st.sendWin += int64(f.Increment)
			}
			s.cond.Broadcast()
			s.mu.Unlock()
		case *http2.PingFrame:
			if !f.IsAck() {
				s.write(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
			}
		case *http2.RSTStreamFrame:
			s.mu.Lock()
			if st := s.streams[f.StreamID]; st != nil {
				st.reset = true
				if st.upstream != nil {
					st.upstream.SetLinger(0)
					st.upstream.Close()
				}
			}
			s.cond.Broadcast()
			s.mu.Unlock()
		case *http2.GoAwayFrame:
			// No new streams come; the open ones finish.
		}
	}
}

func (s *serverConn) shutdown() {
	s.mu.Lock()
	s.closed = true
	for _, st := range s.streams {
		st.reset = true
		if st.upstream != nil {
			st.upstream.Close()
		}
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.tc.Close()
}

// respond sends a HEADERS frame with :status (and END_STREAM unless 200).
func (s *serverConn) respond(id uint32, status string) {
	s.write(func(fr *http2.Framer) error {
		s.hb.Reset()
		s.enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: s.hb.Bytes(), EndHeaders: true, EndStream: status != "200"})
	})
}

func (s *serverConn) onHeaders(f *http2.MetaHeadersFrame) {
	id := f.StreamID
	s.mu.Lock()
	_, exists := s.streams[id]
	s.mu.Unlock()
	if exists { // trailers: not part of HBONE
		s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, http2.ErrCodeProtocol) })
		return
	}
	authority := f.PseudoValue("authority")
	headers := map[string]string{}
	for _, h := range f.RegularFields() {
		headers[h.Name] = h.Value
	}
	entry := map[string]any{"msg": "tunnel", "direction": "inbound", "peer": s.peer, "sni": s.sni, "authority": authority, "headers": headers, "orig_dst": s.orig.String()}
	// ztunnel inbound.rs build_inbound_request / validate_destination: CONNECT only, an
	// ip:port authority whose IP is the address the connection was sent to.
	target, err := netip.ParseAddrPort(authority)
	switch {
	case f.PseudoValue("method") != "CONNECT" || err != nil || target.Addr() != s.orig.Addr():
		entry["status"] = 400
		logJSON(entry)
		s.respond(id, "400")
		return
	case f.StreamEnded():
		entry["status"] = 400
		logJSON(entry)
		s.respond(id, "400")
		return
	}
	st := &serverStream{id: id}
	s.mu.Lock()
	st.sendWin = s.peerInitWin
	s.streams[id] = st
	s.mu.Unlock()
	go s.tunnel(st, target, entry)
}

func (s *serverConn) onData(f *http2.DataFrame) {
	n := int64(f.Header().Length) // padding counts against the windows too
	s.mu.Lock()
	st := s.streams[f.StreamID]
	if st == nil || st.reset || st.inEnd {
		s.mu.Unlock()
		s.write(func(fr *http2.Framer) error {
			if n > 0 {
				fr.WriteWindowUpdate(0, uint32(n))
			}
			return fr.WriteRSTStream(f.StreamID, http2.ErrCodeStreamClosed)
		})
		return
	}
	if st.queued+n > streamWindow {
		st.reset = true
		s.cond.Broadcast()
		s.mu.Unlock()
		s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(f.StreamID, http2.ErrCodeFlowControl) })
		return
	}
	if data := f.Data(); len(data) > 0 {
		st.queue = append(st.queue, append([]byte(nil), data...))
	}
	st.queued += n
	if pad := n - int64(len(f.Data())); pad > 0 { // padding is consumed at once
		st.queued -= pad
		defer s.write(func(fr *http2.Framer) error {
			fr.WriteWindowUpdate(0, uint32(pad))
			return fr.WriteWindowUpdate(f.StreamID, uint32(pad))
		})
	}
	if f.StreamEnded() {
		st.inEnd = true
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// tunnel serves one CONNECT: dial, 200, copy both ways, log once at the end.
func (s *serverConn) tunnel(st *serverStream, target netip.AddrPort, entry map[string]any) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", target.String(), 10*time.Second)
	if err != nil {
		entry["status"], entry["error"] = 503, err.Error()
		logJSON(entry)
		s.forget(st)
		s.respond(st.id, "503")
		return
	}
	up := c.(*net.TCPConn)
	s.mu.Lock()
	st.upstream = up
	s.mu.Unlock()
	s.respond(st.id, "200")
	entry["status"] = 200
	var wg sync.WaitGroup
	var sent, recv int64
	var upErr, downErr string
	wg.Add(2)
	go func() { defer wg.Done(); recv, upErr = s.toUpstream(st) }()
	go func() { defer wg.Done(); sent, downErr = s.toClient(st) }()
	wg.Wait()
	up.Close()
	s.forget(st)
	entry["bytes_from_client"], entry["bytes_to_client"] = recv, sent
	entry["duration_ms"] = time.Since(start).Milliseconds()
	if upErr != "" || downErr != "" {
		entry["error"] = upErr + downErr
	}
	logJSON(entry)
}

// forget drops a finished stream; DATA it had queued but never wrote is given back to the
// connection window, or every failed stream would shrink it for good.
func (s *serverConn) forget(st *serverStream) {
	s.mu.Lock()
	delete(s.streams, st.id)
	unread := st.queued
	st.queue, st.queued = nil, 0
	s.mu.Unlock()
	if unread > 0 {
		s.write(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, uint32(unread)) })
	}
}

// toUpstream writes the client's DATA to the TCP connection, returns the window as it
// goes, and on END_STREAM half-closes the upstream (CloseWrite: a FIN, reading goes on).
func (s *serverConn) toUpstream(st *serverStream) (int64, string) {
	var total int64
	for {
		s.mu.Lock()
		for len(st.queue) == 0 && !st.inEnd && !st.reset {
			s.cond.Wait()
		}
		if st.reset {
			s.mu.Unlock()
			return total, "reset by client"
		}
		if len(st.queue) == 0 { // inEnd, everything written
			s.mu.Unlock()
			st.upstream.CloseWrite()
			return total, ""
		}
		chunk := st.queue[0]
		st.queue = st.queue[1:]
		s.mu.Unlock()
		if _, err := st.upstream.Write(chunk); err != nil {
			s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, http2.ErrCodeConnect) })
			return total, err.Error()
		}
		total += int64(len(chunk))
		s.mu.Lock()
		st.queued -= int64(len(chunk))
		s.mu.Unlock()
		n := uint32(len(chunk))
		s.write(func(fr *http2.Framer) error {
			if err := fr.WriteWindowUpdate(0, n); err != nil {
				return err
			}
			return fr.WriteWindowUpdate(st.id, n)
		})
	}
}

// toClient sends what upstream sends as DATA within both send windows; its FIN becomes an
// empty DATA with END_STREAM (ztunnel h2.rs poll_shutdown), a read error a RST_STREAM.
func (s *serverConn) toClient(st *serverStream) (int64, string) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := st.upstream.Read(buf)
		for off := 0; off < n; {
			s.mu.Lock()
			for (s.connSend <= 0 || st.sendWin <= 0) && !st.reset && !s.closed {
				s.cond.Wait()
			}
			if st.reset || s.closed {
				s.mu.Unlock()
				return total, "stream reset while sending"
			}
			k := min64(int64(n-off), s.connSend, st.sendWin, int64(s.peerFrame))
			s.connSend -= k
			st.sendWin -= k
			s.mu.Unlock()
			chunk := buf[off : off+int(k)]
			if werr := s.write(func(fr *http2.Framer) error { return fr.WriteData(st.id, false, chunk) }); werr != nil {
				return total, werr.Error()
			}
			off += int(k)
			total += k
		}
		if err == io.EOF {
			s.write(func(fr *http2.Framer) error { return fr.WriteData(st.id, true, nil) })
			return total, ""
		}
		if err != nil {
			s.mu.Lock()
			reset := st.reset
			s.mu.Unlock()
			if !reset {
				s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(st.id, http2.ErrCodeConnect) })
			}
			return total, err.Error()
		}
	}
}

func min64(v ...int64) int64 {
	m := v[0]
	for _, x := range v[1:] {
		if x < m {
			m = x
		}
	}
	return m
}
