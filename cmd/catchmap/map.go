package main

import "errors"

type mapCmd struct{}

func (c *mapCmd) Run(e *env) error { return errors.New("map: not implemented yet") }
