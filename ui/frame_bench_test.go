package ui

import (
	"io"
	"syscall"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	uv "github.com/charmbracelet/ultraviolet"

	"github.com/clank-dev/clank/api"
)

// BenchmarkSessionFrame is what one dashboard session pays for a frame at
// 160x40 while a deployment is in progress: the model's update and view,
// then what Bubble Tea's renderer does with the view (parse it into a cell
// buffer, diff it against the previous frame, write the difference). Fifty
// SSH sessions pay it fifty times; the goal for fifty is one core's 50 ms,
// so 1 ms here. "event" is a status change, "spinner" a spinner tick.
func BenchmarkSessionFrame(b *testing.B) {
	const w, h = 160, 40
	for _, what := range []string{"event", "spinner"} {
		for _, depth := range []string{"view", "draw", "diff"} {
			b.Run(what+"/"+depth, func(b *testing.B) {
				m, _ := benchModel(b, 1_000)
				m.Update(tea.WindowSizeMsg{Width: w, Height: h})
				settle(m, m.deps.open("big"))
				d := m.deps.rows[0]
				d.Status = "DEPLOYING"
				m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "deployment", Service: "big",
					DeploymentID: d.ID, Status: d.Status, Deployment: &d}}})
				f := newFrames(w, h)
				f.draw(m.View().Content)
				statuses := []string{"HEALTH_CHECKING", "DEPLOYING"}
				tick := spinner.TickMsg{ID: m.spinner.ID()}
				b.ReportAllocs()
				cpu0 := cpuTime()
				i := 0
				for b.Loop() {
					if what == "event" {
						d.Status = statuses[i%2]
						m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "deployment", Service: "big",
							DeploymentID: d.ID, Status: d.Status, Deployment: &d}}})
					} else {
						m.Update(tick)
					}
					i++
					v := m.View().Content
					switch depth {
					case "draw":
						f.buf.Clear()
						uv.NewStyledString(v).Draw(f.buf, f.buf.Bounds())
					case "diff":
						f.draw(v)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// frames is a terminal as Bubble Tea's renderer keeps it: a cell buffer
// and the writer of the differences.
type frames struct {
	buf uv.ScreenBuffer
	scr *uv.TerminalRenderer
}

func newFrames(w, h int) *frames {
	scr := uv.NewTerminalRenderer(io.Discard, []string{"TERM=xterm-256color"})
	scr.SetFullscreen(true)
	return &frames{buf: uv.NewScreenBuffer(w, h), scr: scr}
}

func (f *frames) draw(content string) {
	f.buf.Clear()
	uv.NewStyledString(content).Draw(f.buf, f.buf.Bounds())
	f.scr.Render(f.buf.RenderBuffer)
	_ = f.scr.Flush()
}

// cpuTime is the CPU time this process has used: on a machine shared with
// other work, a benchmark's wall time says little about its own cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
