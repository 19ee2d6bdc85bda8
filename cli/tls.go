package cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/merlin-net/merlin/internal/selfsigned"
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
// selfsigned.New) and writes it as PEM to a new file in dir.
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
	certPEM, keyPEM, err := selfsigned.New(time.Now())
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
	return selfsigned.Fingerprint(c.cert.Certificate[0])
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
