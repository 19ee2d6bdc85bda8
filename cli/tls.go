package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// serverCert is the certificate serve -tls presents.
type serverCert struct {
	cert tls.Certificate
	// path is the PEM file of the certificate: -tls-cert, or the file a
	// generated certificate was written to (removed by cleanup).
	path string
	// generated reports that the certificate was made at start.
	generated bool
}

// loadServerCert loads the certificate and key of -tls-cert and -tls-key
// or, if both are empty, generates a self-signed one (see
// selfSignedCert) and writes it as PEM to a new file in dir.
func loadServerCert(certFile, keyFile, dir string) (*serverCert, error) {
	switch {
	case certFile != "" && keyFile != "":
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert and -tls-key: %w", err)
		}
		return &serverCert{cert: c, path: certFile}, nil
	case certFile != "" || keyFile != "":
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	certPEM, keyPEM, err := selfSignedCert(time.Now())
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "merlin-cert-*.pem")
	if err != nil {
		return nil, fmt.Errorf("writing the generated certificate: %w", err)
	}
	_, err = f.Write(certPEM)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("writing the generated certificate: %w", err)
	}
	return &serverCert{cert: c, path: f.Name(), generated: true}, nil
}

// cleanup removes the file of a generated certificate.
func (c *serverCert) cleanup() {
	if c.generated {
		os.Remove(c.path)
	}
}

// fingerprint returns the SHA-256 of the leaf certificate's DER, as
// `openssl x509 -fingerprint -sha256` prints it (AB:CD:...).
func (c *serverCert) fingerprint() string {
	sum := sha256.Sum256(c.cert.Certificate[0])
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// tlsConfig returns the server's TLS configuration: this certificate,
// TLS 1.2 at least, and ALPN offering http/1.1 and http/1.0 only (the
// http app speaks HTTP/1.x; net/http would otherwise offer h2, and a
// client offering only protocols the server lacks fails its handshake,
// as curl --http1.0 offering http/1.0 would).
func (c *serverCert) tlsConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1", "http/1.0"},
	}
}

// selfSignedCert returns a new self-signed ECDSA P-256 certificate and
// its key, in PEM, valid from an hour before now for 30 days, for
// 127.0.0.1, ::1 and localhost. It is its own root: a client trusts it by
// its PEM file (curl --cacert FILE, or a Go x509.CertPool).
func selfSignedCert(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"merlin serve"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that OpenSSL takes it as a trust anchor
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
