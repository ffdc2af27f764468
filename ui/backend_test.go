package ui_test

import (
	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// The daemon's socket client is a Backend, and so is the tests' fake.
var (
	_ ui.Backend = (*api.Client)(nil)
	_ ui.Backend = (*fakebackend.Backend)(nil)
)
