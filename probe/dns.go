package probe

import (
	"context"
	"errors"

	"github.com/catchmap/catchmap/probe/result"
)

func measureDNS(ctx context.Context, t Target, r *result.Record) error {
	return errors.New("dns: not implemented")
}
