package main

import "errors"

type measureCmd struct{}

func (c *measureCmd) Run(e *env) error { return errors.New("measure: not implemented yet") }
