package ui

import (
	"context"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
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
	// lines are the screen's lines kept between frames (render.go).
	lines lines
	// stats are the daemon's last sample of the ACTIVE containers' use, by
	// service (stats.go).
	stats map[string]api.ServiceStats
}

func (c *common) now() time.Time { return c.opts.Now() }

func (c *common) admin() bool { return c.opts.Role == RoleAdmin }

// scrollViewport moves a viewport by the navigation keys (the detail and log
// views share them).
func scrollViewport(vp *viewport.Model, k *KeyMap, msg tea.KeyPressMsg) {
	switch {
	case key.Matches(msg, k.Up):
		vp.ScrollUp(1)
	case key.Matches(msg, k.Down):
		vp.ScrollDown(1)
	case key.Matches(msg, k.PageUp):
		vp.PageUp()
	case key.Matches(msg, k.PageDown):
		vp.PageDown()
	case key.Matches(msg, k.Top):
		vp.GotoTop()
	case key.Matches(msg, k.Bottom):
		vp.GotoBottom()
	}
}

// clampWindow keeps a list's cursor on one of its n rows and the cursor's
// row among the vis rows shown from top.
func clampWindow(cursor, top, n, vis int) (int, int) {
	cursor = min(max(cursor, 0), max(n-1, 0))
	if cursor < top {
		top = cursor
	}
	if cursor >= top+vis {
		top = cursor - vis + 1
	}
	return cursor, min(max(top, 0), max(n-vis, 0))
}
