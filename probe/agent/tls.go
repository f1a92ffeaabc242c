package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/catchmap/catchmap/internal/tlsfiles"
)

// TLS reads the files of --ca-file, --cert-file and --key-file into the
// client side of the agent's HTTPS, so that a wrong file stops the agent
// before it sends anything. It returns nil when the config names none: the
// system's CAs and no client certificate.
func (c *Config) TLS() (*tls.Config, error) {
	tc, err := tlsfiles.ClientFiles{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}.
		Config("--ca-file (ca_file)", "--cert-file (cert_file)", "--key-file (key_file)")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return tc, nil
}

// tlsHint adds what to do to the TLS failures that the agent's flags fix.
func tlsHint(err error) error {
	var unknown x509.UnknownAuthorityError
	var op *net.OpError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w: if a private CA signs the aggregator's certificate, pass that CA's certificate with --ca-file", err)
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports the aggregator's alerts so, with an unexported
		// type; an aggregator refuses a handshake for a missing or foreign
		// client certificate.
		return fmt.Errorf("%w: if the aggregator checks client certificates (serve --tls-client-ca), pass one its CA signs with --cert-file and --key-file", err)
	}
	return err
}
