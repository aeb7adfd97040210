// TLS as ztunnel configures it (src/tls/certificate.rs, src/tls/workload.rs): TLS 1.3 only,
// ALPN h2, no session resumption, the client sends no SNI. The server requires a client
// certificate that chains to the mesh roots and names a SPIFFE ID in its trust domain
// (which identity may connect is policy's job); the client requires the server's URI SAN
// to be the destination's expected identity, not any DNS name.
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
	cert   tls.Certificate
	roots  *x509.CertPool
	spiffe string
}

func loadIdentity(certFile, keyFile, rootsFile string) (*identity, error) {
	if certFile == "" || keyFile == "" || rootsFile == "" {
		return nil, errors.New("-cert, -key and -roots are required")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", certFile, keyFile, err)
	}
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", rootsFile)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	id := spiffeOf(leaf)
	if id == "" {
		return nil, fmt.Errorf("%s: the leaf has no spiffe:// URI SAN", certFile)
	}
	return &identity{cert: cert, roots: roots, spiffe: id}, nil
}

func spiffeOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if u.Scheme == "spiffe" {
			return u.String()
		}
	}
	return ""
}

// verifyChain checks raw (leaf first) against the roots for the given use; the leaf's ID.
func verifyChain(raw [][]byte, roots *x509.CertPool, usage x509.ExtKeyUsage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return "", err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", err
	}
	id := spiffeOf(certs[0])
	if id == "" {
		return "", errors.New("no spiffe:// URI SAN")
	}
	return id, nil
}

func baseConfig(id *identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2"},
		Certificates: []tls.Certificate{id.cert},
	}
}

func serverConfig(id *identity, trustDomain string) *tls.Config {
	c := baseConfig(id)
	c.ClientAuth = tls.RequireAnyClientCert // verified below, against the mesh roots
	c.SessionTicketsDisabled = true
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		peer, err := verifyChain(raw, id.roots, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(peer, "spiffe://"+trustDomain+"/") {
			return fmt.Errorf("client %s is not in trust domain %s", peer, trustDomain)
		}
		return nil
	}
	return c
}

// clientConfig: ServerName stays empty, so crypto/tls sends no server_name extension
// (ztunnel: enable_sni = false); the name check is replaced by the SPIFFE check.
func clientConfig(id *identity, expected string) *tls.Config {
	c := baseConfig(id)
	c.InsecureSkipVerify = true
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		peer, err := verifyChain(raw, id.roots, x509.ExtKeyUsageServerAuth)
		if err != nil {
			return err
		}
		if peer != expected {
			return fmt.Errorf("server is %s, expected %s", peer, expected)
		}
		return nil
	}
	return c
}
