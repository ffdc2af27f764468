package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/ui"
)

// TestLostImageDropsTheBadgeLive: an availability event (which names no
// deployment) has the badges on screen read again, with no key pressed.
func TestLostImageDropsTheBadgeLive(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 160, 48)
	openDeployments(s)
	s.waitFor("#5", "Rollback capable")
	before := strings.Count(s.plain(), "Rollback capable")
	b.LoseImage("web", 2)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.plain(), "Rollback capable") != before-1 {
		if time.Now().After(deadline) {
			t.Fatalf("badges: %d, want %d after the image was lost:\n%s", strings.Count(s.plain(), "Rollback capable"), before-1, s.plain())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
