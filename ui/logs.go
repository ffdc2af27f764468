package ui

import (
	"context"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
)

// maxLogLines bounds the lines the logs view keeps; older ones scroll away.
const maxLogLines = 5000

// logChunkMsg carries output of the followed container; logEndMsg says the
// stream ended (the container stopped, or the view was left).
type (
	logChunkMsg struct {
		gen  int
		data []byte
	}
	logEndMsg struct {
		gen int
		err error
	}
)

// logView follows a deployment's container output into a viewport.
type logView struct {
	c       *common
	label   string
	gen     int
	cancel  context.CancelFunc
	ch      chan []byte
	lines   []string
	partial string
	ended   bool
	err     error
	kept    bool // the container is gone: the stream is the log the daemon kept

	vp            viewport.Model
	width, height int
}

func newLogView(c *common) logView {
	return logView{c: c, vp: viewport.New()}
}

// open starts following a deployment's logs (deploymentID "" = the
// service's active one). The Backend call runs until stop or the program's
// context ends.
func (v *logView) open(service, deploymentID, label string) tea.Cmd {
	v.stop()
	v.gen++
	v.label, v.lines, v.partial, v.ended, v.err, v.kept = label, nil, "", false, nil, false
	v.vp.SetContent("")
	ctx, cancel := context.WithCancel(v.c.ctx)
	v.cancel = cancel
	ch := make(chan []byte, 64)
	v.ch = ch
	b, gen := v.c.backend, v.gen
	follow := func() tea.Msg {
		err := b.Logs(ctx, service, deploymentID, true, chanWriter{ctx: ctx, ch: ch})
		close(ch)
		if ctx.Err() != nil {
			err = nil
		}
		return logEndMsg{gen: gen, err: err}
	}
	return tea.Batch(follow, readLogs(gen, ch))
}

// stop ends the current stream, if any.
func (v *logView) stop() {
	if v.cancel != nil {
		v.cancel()
		v.cancel = nil
	}
}

// readLogs delivers what the stream wrote since the last read, and re-arms
// itself until the stream's channel closes.
func readLogs(gen int, ch <-chan []byte) tea.Cmd {
	return func() tea.Msg {
		data, ok := <-ch
		if !ok {
			return nil
		}
		for len(data) < 64<<10 {
			select {
			case more, ok := <-ch:
				if !ok {
					return logChunkMsg{gen: gen, data: data}
				}
				data = append(data, more...)
				continue
			default:
			}
			break
		}
		return logChunkMsg{gen: gen, data: data}
	}
}

// chanWriter hands each write to the view's reader.
type chanWriter struct {
	ctx context.Context
	ch  chan<- []byte
}

func (w chanWriter) Write(p []byte) (int, error) {
	cp := append([]byte(nil), p...)
	select {
	case w.ch <- cp:
		return len(p), nil
	case <-w.ctx.Done():
		return 0, w.ctx.Err()
	}
}

// apply adds a chunk of output; it returns the command reading the next one.
func (v *logView) apply(msg logChunkMsg) tea.Cmd {
	if msg.gen != v.gen {
		return nil
	}
	follow := v.vp.AtBottom() || len(v.lines) == 0
	text := v.partial + string(msg.data)
	parts := strings.Split(text, "\n")
	v.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		v.lines = append(v.lines, v.logLine(l))
	}
	if over := len(v.lines) - maxLogLines; over > 0 {
		v.lines = append(v.lines[:0], v.lines[over:]...)
	}
	v.vp.SetContentLines(v.lines)
	if follow {
		v.vp.GotoBottom()
	}
	return readLogs(v.gen, v.ch)
}

func (v *logView) end(msg logEndMsg) {
	if msg.gen != v.gen {
		return
	}
	v.ended, v.err = true, msg.err
	if v.partial != "" {
		v.lines = append(v.lines, v.logLine(v.partial))
		v.partial = ""
		v.vp.SetContentLines(v.lines)
	}
}

// logLine is a line of the stream as shown: the header the daemon puts
// above a removed container's kept log says so in its own style, with the
// removal's time and age; any other line is cleaned.
func (v *logView) logLine(raw string) string {
	id, removed, ok := api.ParseKeptLogHeader(raw)
	if !ok {
		return cleanLogLine(raw)
	}
	v.kept = true
	text := "── kept from removed container " + cleanLogLine(id) + " · removed " + stamp(&removed) +
		" (" + age(v.c.now(), removed) + " ago)"
	if strings.Contains(raw, "older output was not kept") {
		text += " · older output was not kept"
	}
	return keptHeaderStyle.Render(text + " ──")
}

// keptHeaderStyle marks the header of a removed container's kept log.
var keptHeaderStyle = lipgloss.NewStyle().Foreground(colYellow).Bold(true)

// cleanLogLine keeps a container's output from driving the terminal: escape
// sequences and control characters go, tabs become spaces.
func cleanLogLine(s string) string {
	s = ansi.Strip(s)
	s = strings.ReplaceAll(s, "\t", "    ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func (v *logView) setSize(w, h int) {
	v.width, v.height = w, h
	v.vp.SetWidth(w)
	v.vp.SetHeight(max(h-1, 1))
}

func (v *logView) scroll(k *KeyMap, msg tea.KeyPressMsg) {
	scrollViewport(&v.vp, k, msg)
}

func (v *logView) view(focused bool) []string {
	st := v.c.styles
	state := "following"
	switch {
	case v.err != nil:
		state = "ended: " + v.err.Error()
	case v.kept:
		state = "kept log · container removed"
	case v.ended:
		state = "ended"
	}
	lines := []string{joinEnds(st.paneTitle("logs · "+v.label, focused), st.Dim.Render(state+" · esc back "), v.width)}
	if len(v.lines) == 0 && v.partial == "" {
		msg := "waiting for output…"
		if v.ended {
			msg = "no output"
		}
		lines = append(lines, fit(st.Dim.Render("  "+msg), v.width))
	}
	return append(lines, padLines(v.vp.View(), v.width, v.height-len(lines))...)
}

// logSource says where deployment d's logs come from: its running container
// (live), the log the daemon kept when it removed the container, or nowhere.
// The detail view says so instead of offering a container that is gone.
func logSource(d *api.Deployment, now time.Time) (live bool, where string) {
	running := inProgress(d.Status) || d.Status == "ACTIVE" || d.Status == "DRAINING" ||
		(d.WarmUntil != nil && now.Before(*d.WarmUntil))
	switch {
	case d.ContainerID != "" && running:
		return true, shortID(d.ContainerID)
	case d.LogsKeptAt != nil:
		return false, "kept from removed container " + shortID(d.ContainerID) + " (removed " + age(now, *d.LogsKeptAt) + " ago)"
	case d.ContainerID != "":
		return false, "none: container " + shortID(d.ContainerID) + " was removed, no log kept"
	default:
		return false, "none: no container ran"
	}
}
