// TLS as ztunnel configures it: 1.3 only, ALPN h2, no session tickets, no SNI from the
// client; peers are judged by their chain against -roots and then by the SPIFFE ID in the
// leaf's URI SAN. (The same rules as tests/interop/hbone-peer/tls.go, which a GOPATH build
// of this directory cannot import: both are package main.)
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

type identity struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

func loadIdentity(certFile, keyFile, rootsFile string) (*identity, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", rootsFile)
	}
	return &identity{cert, roots}, nil
}

func spiffeOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return ""
}

// verify checks raw (leaf first) against the roots for usage and returns the leaf's ID.
func verify(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	var leaf *x509.Certificate
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return "", err
		}
		if i == 0 {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", err
	}
	if id := spiffeOf(leaf); id != "" {
		return id, nil
	}
	return "", errors.New("no spiffe:// URI SAN")
}

func config(id *identity) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"}, Certificates: []tls.Certificate{id.cert}, SessionTicketsDisabled: true}
}

func serverConfig(id *identity, trustDomain string) *tls.Config {
	c := config(id)
	c.ClientAuth = tls.RequireAnyClientCert // verified below, against the roots
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		peer, err := verify(raw, id.roots, x509.ExtKeyUsageClientAuth)
		if err == nil && !strings.HasPrefix(peer, "spiffe://"+trustDomain+"/") {
			err = fmt.Errorf("client %s is not in trust domain %s", peer, trustDomain)
		}
		return err
	}
	return c
}

// clientConfig: no ServerName, so no server_name extension; the SPIFFE check replaces the
// name check.
func clientConfig(id *identity, expected string) *tls.Config {
	c := config(id)
	c.InsecureSkipVerify = true
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		peer, err := verify(raw, id.roots, x509.ExtKeyUsageServerAuth)
		if err == nil && peer != expected {
			err = fmt.Errorf("server is %s, expected %s", peer, expected)
		}
		return err
	}
	return c
}

func tlsReport(st tls.ConnectionState) map[string]any {
	version := map[uint16]string{tls.VersionTLS13: "TLSv1.3", tls.VersionTLS12: "TLSv1.2"}[st.Version]
	peer := ""
	if len(st.PeerCertificates) > 0 {
		peer = spiffeOf(st.PeerCertificates[0])
	}
	return map[string]any{"msg": "tls", "version": version, "alpn": st.NegotiatedProtocol,
		"cipher": tls.CipherSuiteName(st.CipherSuite), "peer": peer}
}
