package ui

import (
	"time"

	tea "charm.land/bubbletea/v2"
)

// The clock: ages ("12s", "3h") and countdowns ("warm, 4m left") are drawn
// against Options.Now, and redrawn when their text would change, no sooner
// and never while nothing on screen shows one. One tick is pending at most;
// it is armed after an update when something shown needs it, and dropped
// (not re-armed) once nothing does.

// clockTickMsg redraws the relative times on screen. gen ties it to the
// tick that was armed last.
type clockTickMsg struct{ gen int }

// maxTickWait bounds a tick's wait, so that a clock that jumps (a test's, a
// suspended laptop's) is caught up with within a minute.
const maxTickWait = time.Minute

// clock arms the dashboard's one tick.
type clock struct {
	gen     int
	pending bool
}

// arm returns the tick to wait for, after d, unless one is pending.
func (c *clock) arm(d time.Duration) tea.Cmd {
	if c.pending {
		return nil
	}
	c.pending = true
	c.gen++
	gen := c.gen
	d = min(max(d, 10*time.Millisecond), maxTickWait)
	return tea.Tick(d, func(time.Time) tea.Msg { return clockTickMsg{gen: gen} })
}

// fired takes a tick; it reports whether it is the one armed last.
func (c *clock) fired(msg clockTickMsg) bool {
	if msg.gen != c.gen {
		return false
	}
	c.pending = false
	return true
}

// nextChange is how long until the text of a relative time d (an age, or a
// countdown's remaining time) changes: at the next whole unit of the unit
// it is shown in (see age).
func nextChange(d time.Duration) time.Duration {
	if d < 0 {
		return -d // not yet: shown as 0s until then
	}
	unit := ageUnit(d)
	return unit - d%unit
}

// countdownChange is how long until a countdown's remaining time r, which
// shrinks, shows another text: when it crosses below its current whole unit.
func countdownChange(r time.Duration) time.Duration {
	if r <= 0 {
		return maxTickWait
	}
	unit := ageUnit(r)
	if rem := r % unit; rem > 0 {
		return rem
	}
	return unit
}

// ageUnit is the unit a duration is shown in (see age).
func ageUnit(d time.Duration) time.Duration {
	switch {
	case d < time.Minute:
		return time.Second
	case d < time.Hour:
		return time.Minute
	case d < 48*time.Hour:
		return time.Hour
	case d < 14*24*time.Hour:
		return 24 * time.Hour
	case d < 365*24*time.Hour:
		return 7 * 24 * time.Hour
	}
	return 365 * 24 * time.Hour
}

// soonest keeps the shorter of two waits, 0 meaning none.
func soonest(a, b time.Duration) time.Duration {
	if b <= 0 {
		return a
	}
	if a == 0 || b < a {
		return b
	}
	return a
}
