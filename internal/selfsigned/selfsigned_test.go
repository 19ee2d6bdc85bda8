package selfsigned

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

// New's certificate loads as a key pair, verifies against its own Pool
// for each name it is made for, and is valid now, not in 31 days.
func TestNew(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, err := New(now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := Pool(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		host string
		at   time.Time
		ok   bool
	}{
		{name: "localhost", host: "localhost", at: now, ok: true},
		{name: "ipv4", host: "127.0.0.1", at: now, ok: true},
		{name: "ipv6", host: "::1", at: now, ok: true},
		{name: "other-host", host: "example.com", at: now},
		{name: "expired", host: "localhost", at: now.Add(31 * 24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.host, CurrentTime: tc.at})
			if (err == nil) != tc.ok {
				t.Errorf("Verify for %s at %v: %v, want ok %t", tc.host, tc.at, err, tc.ok)
			}
		})
	}
	if !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("first IP %v, want 127.0.0.1", cert.IPAddresses[0])
	}
	if fp := Fingerprint(cert.Raw); len(fp) != 32*3-1 || strings.ToUpper(fp) != fp {
		t.Errorf("Fingerprint = %q, want 32 upper-case hex pairs joined by colons", fp)
	}
	if _, err := Pool([]byte("not a certificate")); err == nil {
		t.Error("Pool of no certificate: want an error")
	}
}
