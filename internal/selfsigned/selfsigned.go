// Package selfsigned makes the self-signed certificate that merlin's
// servers present over TLS when they are given none: merlin serve -tls
// without -tls-cert, and merlin bench -http-tls, which hands one to every
// server it starts and trusts it in the load generator.
//
// The certificate is its own root, so a client trusts it by its PEM
// (curl --cacert FILE, or Pool in Go) rather than skipping verification.
//
//	certPEM, keyPEM, err := selfsigned.New(time.Now())
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// New returns a new self-signed ECDSA P-256 certificate and its key, in
// PEM, valid from an hour before now for 30 days, for 127.0.0.1, ::1 and
// localhost. It is its own root: a client trusts it by its PEM file (curl
// --cacert FILE, or Pool).
func New(now time.Time) (certPEM, keyPEM []byte, err error) {
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

// Pool returns a certificate pool that trusts the certificates of
// certPEM, such as New's.
func Pool(certPEM []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("selfsigned: no certificate in the PEM")
	}
	return p, nil
}

// Fingerprint returns the SHA-256 of a certificate's DER, as `openssl
// x509 -fingerprint -sha256` prints it (AB:CD:...).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}
