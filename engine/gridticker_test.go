package engine

import (
	"testing"
	"time"
)

// Supervisors with the same interval wake on the same ticks (one wake-up
// for all their probes): every tick armed is a multiple of the interval,
// one interval apart while the receiver keeps up, and a tick missed while
// it was busy comes at once, as a time.Ticker's would, then the grid again.
func TestGridTickerTicksOnMultiplesOfItsInterval(t *testing.T) {
	const interval = 20 * time.Millisecond
	onGrid := func(g *gridTicker) {
		t.Helper()
		if off := g.tick.UnixNano() % int64(interval); off != 0 {
			t.Fatalf("tick %s is %s off the grid", g.tick.Format(time.StampMicro), time.Duration(off))
		}
	}
	g := newGridTicker(interval)
	defer g.Stop()
	onGrid(g)
	if wait := time.Until(g.tick); wait > interval {
		t.Fatalf("the first tick is %s away, more than an interval", wait)
	}
	for range 3 {
		prev := g.tick
		<-g.C
		if now := time.Now(); now.Before(prev) {
			t.Fatalf("ticked at %s, before its tick %s", now.Format(time.StampMicro), prev.Format(time.StampMicro))
		}
		g.next()
		onGrid(g)
		if time.Until(g.tick) > 0 && g.tick.Sub(prev) != interval {
			t.Fatalf("ticks %s apart, want %s", g.tick.Sub(prev), interval)
		}
	}
	// A receiver busy for several intervals: the next tick at once.
	<-g.C
	time.Sleep(3 * interval)
	g.next()
	onGrid(g)
	if !g.tick.Before(time.Now()) {
		t.Fatalf("after a busy receiver, the next tick is %s away, want at once", time.Until(g.tick))
	}
	select {
	case <-g.C:
	case <-time.After(5 * time.Second):
		t.Fatal("the missed tick did not come")
	}
	g.next()
	onGrid(g)
	if wait := time.Until(g.tick); wait > interval {
		t.Fatalf("after the missed tick, the next is %s away, more than an interval", wait)
	}
}
