package engine_test

import (
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// The "Rollback capable" badge: ACTIVE once, not the current one, its image
// confirmed available (unknown is not confirmed).
func TestCanRollBackTo(t *testing.T) {
	at := time.Now()
	was := store.Deployment{ID: "d1", ActivatedAt: &at}
	never := store.Deployment{ID: "d2"}
	ok := engine.Availability{State: store.AvailabilityAvailable, Via: store.ViaLocal}
	for _, c := range []struct {
		name   string
		d      store.Deployment
		active string
		a      engine.Availability
		want   bool
	}{
		{"was ACTIVE, available", was, "d9", ok, true},
		{"the current one", was, "d1", ok, false},
		{"never ACTIVE", never, "d9", ok, false},
		{"image missing", was, "d9", engine.Availability{State: store.AvailabilityMissing}, false},
		{"image unknown", was, "d9", engine.Availability{State: store.AvailabilityUnknown}, false},
	} {
		if got := engine.CanRollBackTo(c.d, c.active, c.a); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
