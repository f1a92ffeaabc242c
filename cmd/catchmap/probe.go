package main

import (
	"errors"

	"github.com/catchmap/catchmap/probe/agent"
)

// probeCmd runs the probe agent; its flags are shared with the static
// catchmap-probe binary through agent.Flags.
type probeCmd struct {
	agent.Flags `embed:""`
}

func (c *probeCmd) Run(e *env) error {
	err := c.Flags.Execute(e.ctx, e.log, e.stdout)
	if errors.Is(err, agent.ErrConfig) {
		return usageErrorf("probe: %v", err)
	}
	return err
}
