package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/catchmap/catchmap/internal/responder"
)

// POPHeader is the HTTP response header in which a lab site names itself.
const POPHeader = "X-Catchmap-Pop"

// RunSite serves one site's DNS (CHAOS identity and NSID) and HTTP (POP
// header) on host until ctx ends. ready, when set, is created once both
// serve. It runs inside the site's namespace.
func RunSite(ctx context.Context, log *slog.Logger, identity, host, ready string) error {
	d := responder.NewDNS(identity)
	d.NSID = []byte(identity)
	addr, err := d.Start(ctx, net.JoinHostPort(host, "53"))
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		d.Shutdown(sctx)
	}()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "80"))
	if err != nil {
		return fmt.Errorf("site %s: HTTP listener: %w", identity, err)
	}
	colo := strings.ToUpper(strings.SplitN(identity, ".", 2)[0])
	srv := &http.Server{Handler: responder.HTTP(POPHeader, identity, colo), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != "" {
		if err := os.WriteFile(ready, []byte(addr+"\n"), 0o644); err != nil {
			return fmt.Errorf("site %s: ready file: %w", identity, err)
		}
	}
	log.Info("lab site serving", "identity", identity, "dns", addr, "http", ln.Addr().String())
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("site %s: HTTP server stopped: %w", identity, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
