package main

import "errors"

type presetsCmd struct{}

func (c *presetsCmd) Run(e *env) error { return errors.New("presets: not implemented yet") }
