// hbone-peer: a node agent that speaks HBONE the way istio/ztunnel does, on Go's HTTP/2
// stack (golang.org/x/net/http2 from Debian), so that mtun's tests can put it on the other
// end of a tunnel. One process per node, like ztunnel:
//
//	-inbound  ADDR  HBONE server (ztunnel src/proxy/inbound.rs): mutual TLS 1.3, ALPN h2,
//	                CONNECT :authority=ip:port whose IP must be the original destination,
//	                200 only after the upstream connect, half-close both ways.
//	-inbound-stock  the same on Go's stock http2.Server (stock.go), for its way of ending
//	-outbound ADDR  capture listener (ztunnel src/proxy/outbound.rs): the original destination
//	                from SO_ORIGINAL_DST, dial its IP:15008 with no SNI, CONNECT with
//	                forwarded/traceparent/baggage, pipe the captured connection through.
//
// It logs one JSON line per event on stderr ("listening" once bound; one "tunnel" line per
// tunnel when it ends) for the test to read. It installs no iptables rules: as with
// ztunnel (istio-cni installs them), the test does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
)

type peersFlag map[string]string

func (p peersFlag) String() string { return fmt.Sprint(map[string]string(p)) }
func (p peersFlag) Set(v string) error {
	ip, id, ok := strings.Cut(v, "=")
	if !ok || net.ParseIP(ip) == nil || !strings.HasPrefix(id, "spiffe://") {
		return fmt.Errorf("want IP=spiffe://..., got %q", v)
	}
	p[ip] = id
	return nil
}

// addrMap: -misdirect FROM=TO, both ip:port.
type addrMap map[string]string

func (m addrMap) String() string { return fmt.Sprint(map[string]string(m)) }
func (m addrMap) Set(v string) error {
	from, to, ok := strings.Cut(v, "=")
	_, err1 := netip.ParseAddrPort(from)
	_, err2 := netip.ParseAddrPort(to)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("want IP:PORT=IP:PORT, got %q", v)
	}
	m[from] = to
	return nil
}

var logMu sync.Mutex

// logJSON writes one event line; never a key or certificate.
func logJSON(fields map[string]any) {
	b, _ := json.Marshal(fields)
	logMu.Lock()
	defer logMu.Unlock()
	os.Stderr.Write(append(b, '\n'))
}

func fatal(format string, args ...any) {
	logJSON(map[string]any{"level": "error", "msg": fmt.Sprintf(format, args...)})
	os.Exit(2)
}

func main() {
	inbound := flag.String("inbound", "", "HBONE listen address (e.g. 0.0.0.0:15008)")
	stock := flag.Bool("inbound-stock", false, "serve -inbound with Go's http2.Server (stock.go) instead")
	outbound := flag.String("outbound", "", "capture listen address (e.g. 0.0.0.0:15001)")
	certFile := flag.String("cert", "", "workload certificate chain (PEM, leaf first)")
	keyFile := flag.String("key", "", "workload private key (PEM)")
	rootsFile := flag.String("roots", "", "mesh trust bundle (PEM)")
	trustDomain := flag.String("trust-domain", "cluster.local", "trust domain clients must be in")
	baggage := flag.String("baggage", "", "baggage header value sent on outbound CONNECTs")
	peers := peersFlag{}
	flag.Var(peers, "peer", "IP=spiffe://... expected identity of a destination pod (repeatable)")
	misdirect := addrMap{}
	flag.Var(misdirect, "misdirect", "FROM=TO: for original destination FROM, CONNECT to TO over FROM's tunnel "+
		"(a test of the server's authority check; ztunnel never does this)")
	flag.Parse()
	if *inbound == "" && *outbound == "" {
		fatal("nothing to do: give -inbound and/or -outbound")
	}
	id, err := loadIdentity(*certFile, *keyFile, *rootsFile)
	if err != nil {
		fatal("%v", err)
	}
	ready := map[string]any{"msg": "listening", "identity": id.spiffe}
	if *inbound != "" {
		ln, err := net.Listen("tcp", *inbound)
		if err != nil {
			fatal("inbound listen %s: %v", *inbound, err)
		}
		ready["inbound"] = ln.Addr().String()
		if *stock {
			go serveInboundStock(ln, id, *trustDomain)
		} else {
			go serveInbound(ln, id, *trustDomain)
		}
	}
	if *outbound != "" {
		ln, err := net.Listen("tcp", *outbound)
		if err != nil {
			fatal("outbound listen %s: %v", *outbound, err)
		}
		ready["outbound"] = ln.Addr().String()
		d := newDialer(id, peers, *baggage)
		d.misdirect = misdirect
		go serveOutbound(ln, d)
	}
	logJSON(ready)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
