package ui

import (
	"context"
	"time"

	"github.com/charmbracelet/colorprofile"
)

// Role says what a dashboard user may do.
type Role string

const (
	// RoleAdmin may deploy, redeploy and roll back.
	RoleAdmin Role = "admin"
	// RoleViewer only looks. It is also what an empty or unknown role means.
	RoleViewer Role = "viewer"
)

// ParseRole maps an authorized_keys role value to a Role: "admin" is an
// admin, anything else (including nothing) is a viewer.
func ParseRole(s string) Role {
	if Role(s) == RoleAdmin {
		return RoleAdmin
	}
	return RoleViewer
}

// Defaults of Options.
const (
	DefaultWidth    = 80
	DefaultHeight   = 24
	DefaultPageSize = 200
	// wideWidth is the width from which services and deployments sit side
	// by side instead of one screen at a time.
	wideWidth = 120
)

// Options configure one dashboard.
type Options struct {
	// Context bounds everything the dashboard asks of the Backend, the event
	// subscription included: cancel it when the program ends (Run and the
	// SSH server do).
	Context context.Context
	// Role decides whether r/R/d may act. The zero value is a viewer.
	Role Role
	// Actor is recorded as triggered_by on the actions this dashboard starts.
	Actor string
	// Host names the machine in the header; empty uses Status().Host.
	Host string
	// Width and Height are the size drawn before the terminal reports its own.
	Width, Height int
	// ColorProfile forces a colour profile (tests, recordings); the zero
	// value lets Bubble Tea detect the terminal's.
	ColorProfile colorprofile.Profile
	// PageSize is how many deployments one Backend call fetches; the window
	// kept in memory is three pages.
	PageSize int
	// Now is the clock ages are measured against (tests fix it).
	Now func() time.Time
	// Banner is shown above the panes until the first key (clank demo's
	// hints: what to try, and where).
	Banner []string
}

func (o Options) withDefaults() Options {
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Role != RoleAdmin {
		o.Role = RoleViewer
	}
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	if o.Height <= 0 {
		o.Height = DefaultHeight
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
