package probe

import (
	"context"
	"errors"

	"github.com/catchmap/catchmap/probe/result"
)

func measureICMP(ctx context.Context, t Target, r *result.Record) error {
	return errors.New("icmp: not implemented")
}
