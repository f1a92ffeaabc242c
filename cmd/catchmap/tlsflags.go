package main

import (
	"net/http"
	"time"

	"github.com/catchmap/catchmap/internal/tlsfiles"
)

// tlsFlags are the client side of an aggregator's HTTPS, as the agent has
// them: a private CA, and a client certificate for an aggregator that
// checks them (serve --tls-client-ca). The files are read when the command
// starts.
type tlsFlags struct {
	CAFile   string `name:"ca-file" help:"PEM certificate of a private CA that signs the aggregator's certificate." placeholder:"FILE"`
	CertFile string `name:"cert-file" help:"PEM client certificate, for an aggregator that checks them (serve --tls-client-ca); with --key-file." placeholder:"FILE"`
	KeyFile  string `name:"key-file" help:"PEM private key of --cert-file." placeholder:"FILE"`
}

// httpClient is the HTTP client of a command's requests to the aggregator,
// with timeout (none when 0); a bad file is a usage error of cmd.
func (f tlsFlags) httpClient(cmd string, timeout time.Duration) (*http.Client, error) {
	tc, err := tlsfiles.ClientFiles{CAFile: f.CAFile, CertFile: f.CertFile, KeyFile: f.KeyFile}.Config("--ca-file", "--cert-file", "--key-file")
	if err != nil {
		return nil, usageErrorf("%s: %v", cmd, err)
	}
	return tlsfiles.HTTPClient(tc, timeout), nil
}
