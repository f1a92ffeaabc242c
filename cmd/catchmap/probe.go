package main

import "errors"

type probeCmd struct{}

func (c *probeCmd) Run(e *env) error { return errors.New("probe: not implemented yet") }
