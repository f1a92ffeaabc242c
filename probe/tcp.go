package probe

import (
	"context"
	"errors"

	"github.com/catchmap/catchmap/probe/result"
)

func measureTCP(ctx context.Context, t Target, r *result.Record) error {
	return errors.New("tcp: not implemented")
}
