package main

import (
	"errors"

	"github.com/catchmap/catchmap/sweep/catcher"
)

// catchCmd runs a site's sweep agent; its flags are shared with the static
// catchmap-catch binary through catcher.Flags.
type catchCmd struct {
	catcher.Flags `embed:""`
}

func (c *catchCmd) Run(e *env) error {
	err := c.Flags.Execute(e.ctx, e.log, e.stdout)
	if errors.Is(err, catcher.ErrConfig) {
		return usageErrorf("catch: %v", err)
	}
	return err
}
