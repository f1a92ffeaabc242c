package main

import "errors"

type serveCmd struct{}

func (c *serveCmd) Run(e *env) error { return errors.New("serve: not implemented yet") }
