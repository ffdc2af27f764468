package ui

import (
	"context"
	"time"
)

// common is what every component of the dashboard shares: where to ask, who
// asks, how things look and which keys do what.
type common struct {
	ctx     context.Context
	backend Backend
	opts    Options
	styles  *Styles
	keys    *KeyMap
	// spin is the spinner's current frame, drawn beside in-progress statuses.
	spin string
}

func (c *common) now() time.Time { return c.opts.Now() }

func (c *common) admin() bool { return c.opts.Role == RoleAdmin }
