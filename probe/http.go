package probe

import (
	"context"
	"errors"

	"github.com/catchmap/catchmap/probe/result"
)

func measureHTTP(ctx context.Context, t Target, r *result.Record) error {
	return errors.New("http: not implemented")
}
