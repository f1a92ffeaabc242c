// Package tlsfiles turns the PEM files of catchmap's TLS settings into
// tls.Configs, for the aggregator's HTTPS listener and for the probe
// agent's client alike. Callers read the files once, at start-up, so that a
// missing or wrong file stops the program before it serves or sends
// anything; a renewed certificate therefore takes a restart. Errors name
// the setting that gave the file. The package needs no cgo: the static
// probe binary uses it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"time"
)

// MinVersion is the oldest TLS version either side accepts.
const MinVersion = tls.VersionTLS12

// Pool reads the CA certificates of the PEM file at path. setting names
// the file in errors, such as "--ca-file".
func Pool(setting, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: give a readable PEM file of CA certificates", setting, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			// A key here is a key copied where it does not belong.
			return nil, fmt.Errorf("%s %s: holds a %q PEM block: give CA certificates only", setting, path, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: certificate %d: %w", setting, path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it: give the CA's certificate, which begins with -----BEGIN CERTIFICATE-----", setting, path)
	}
	return pool, nil
}

// KeyPair reads a certificate (with any intermediates after it) and its
// private key, both PEM. certSetting and keySetting name the files in
// errors.
func KeyPair(certSetting, certPath, keySetting, keyPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w: give a readable PEM certificate", certSetting, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w: give a readable PEM private key", keySetting, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s %s and %s %s: %w: give a certificate and the private key it was issued for",
			certSetting, certPath, keySetting, keyPath, err)
	}
	return cert, nil
}

// Server is the configuration of an HTTPS listener that presents cert.
// With clientCAs, the handshake fails for every client that does not
// present a certificate one of them signs.
func Server(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: MinVersion}
	if clientCAs != nil {
		c.ClientCAs, c.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	return c
}

// Client is the configuration of a client that trusts roots (the system's
// CAs when nil) and presents cert when the server asks for one (none when
// nil).
func Client(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: roots, MinVersion: MinVersion}
	if cert != nil {
		// Certificates would send nothing to a server whose CAs did not
		// sign cert, which then logs a missing certificate; sending it
		// anyway makes the server log the CA that does not match.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return c
}

// ClientFiles are the PEM files of a client of the aggregator's HTTPS: a
// private CA that signs the aggregator's certificate, and a certificate of
// the client's own with its key. Empty names take the system's CAs and
// present no certificate.
type ClientFiles struct {
	CAFile, CertFile, KeyFile string
}

// Config reads the files into the client side of HTTPS, nil when none is
// named. caName, certName and keyName are the settings' names for errors,
// such as "--ca-file".
func (f ClientFiles) Config(caName, certName, keyName string) (*tls.Config, error) {
	if f.CAFile == "" && f.CertFile == "" && f.KeyFile == "" {
		return nil, nil
	}
	var roots *x509.CertPool
	if f.CAFile != "" {
		p, err := Pool(caName, f.CAFile)
		if err != nil {
			return nil, err
		}
		roots = p
	}
	var cert *tls.Certificate
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return nil, fmt.Errorf("%s without %s: give the client certificate's private key too", certName, keyName)
	case f.KeyFile != "" && f.CertFile == "":
		return nil, fmt.Errorf("%s without %s: give the client certificate too", keyName, certName)
	case f.CertFile != "":
		kp, err := KeyPair(certName, f.CertFile, keyName, f.KeyFile)
		if err != nil {
			return nil, err
		}
		cert = &kp
	}
	return Client(roots, cert), nil
}

// HTTPClient is an HTTP client over tc (plain http.Client defaults when
// nil), with timeout (none when 0).
func HTTPClient(tc *tls.Config, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout}
	if tc != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		c.Transport = tr
	}
	return c
}
