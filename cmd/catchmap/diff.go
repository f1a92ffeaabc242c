package main

import "errors"

type diffCmd struct{}

func (c *diffCmd) Run(e *env) error { return errors.New("diff: not implemented yet") }
