package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"

	"github.com/clank-dev/clank/api"
)

// A frame is drawn after every message a session's dashboard receives, and
// Bubble Tea then parses and diffs the whole of it (BENCHMARKS.md, "Every
// screen in time"): with 50 SSH sessions, what one frame costs is paid 50
// times per change. The lines below are drawn from few inputs that rarely
// change, and drawing them is costly (lipgloss and the help bubble render
// every key), so each is kept with the key of its inputs and drawn again
// only when that key changes.

// lineCache is one line of the screen as last drawn, and the key of what it
// was drawn from.
type lineCache[K comparable] struct {
	key  K
	line string
	ok   bool
}

// get is the line drawn for key, drawing it with draw when key differs
// from the last one's.
func (c *lineCache[K]) get(key K, draw func() string) string {
	if !c.ok || c.key != key {
		c.key, c.line, c.ok = key, draw(), true
	}
	return c.line
}

// bindingsKey is what the footer's keys line is drawn from: the width and
// each binding's help, enabled or not.
func bindingsKey(width int, groups ...[]key.Binding) string {
	var b strings.Builder
	b.Grow(256)
	b.WriteString(strconv.Itoa(width))
	for _, g := range groups {
		for i := range g {
			h := g[i].Help()
			b.WriteByte(0)
			if !g[i].Enabled() {
				b.WriteByte('-')
			}
			b.WriteString(h.Key)
			b.WriteByte(1)
			b.WriteString(h.Desc)
		}
	}
	return b.String()
}

// lines are the lines a dashboard keeps between frames.
type lines struct {
	header lineCache[headerKey]
	keys   lineCache[string]
}

// headerKey is everything the header line is drawn from (headerLine).
type headerKey struct {
	status            api.Status
	err               string
	width             int
	host, role, actor string
}

// header is the header line, drawn again only when what it shows changed.
func (m *Model) header() string {
	k := headerKey{status: m.status, width: m.width, host: m.c.opts.Host, role: string(m.c.opts.Role), actor: m.c.opts.Actor}
	if m.statusErr != nil {
		k.err = m.statusErr.Error()
	}
	return m.c.lines.header.get(k, m.headerLine)
}

// joinScreen puts the screen's lines together in one string, allocated
// once: the header, the banner, the body (left and right joined by sep when
// both are there, else the one that is) and the footer. Each line's
// trailing blanks in no style are left out (trimBlank).
func joinScreen(header string, banner, left, right []string, sep, footer string) string {
	rows := len(left)
	switch {
	case left == nil:
		rows = len(right)
	case right != nil:
		rows = len(left)
	}
	size := len(header) + len(banner) + rows + 1 + len(footer)
	for _, l := range banner {
		size += len(l)
	}
	for _, l := range left {
		size += len(l)
	}
	for _, l := range right[:min(rows, len(right))] {
		size += len(l)
	}
	if left != nil && right != nil {
		size += rows * len(sep)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(trimBlank(header))
	for _, l := range banner {
		b.WriteByte('\n')
		b.WriteString(trimBlank(l))
	}
	for i := range rows {
		b.WriteByte('\n')
		switch {
		case left == nil:
			b.WriteString(trimBlank(right[i]))
		case right == nil:
			b.WriteString(trimBlank(left[i]))
		default:
			b.WriteString(left[i])
			b.WriteString(sep)
			b.WriteString(trimBlank(right[i]))
		}
	}
	b.WriteByte('\n')
	b.WriteString(trimBlank(footer))
	return b.String()
}

// trimBlank leaves out the blanks that end line when they are drawn in no
// style (no escape sequence before them, or a reset last): the renderer
// clears its screen to exactly such blanks before it draws a frame, so the
// screen is the same, and every cell left out is one the renderer neither
// parses nor writes into its buffer. Blanks under a style (the selected
// row's background, an underline) stay.
func trimBlank(line string) string {
	end := len(line)
	for end > 0 && line[end-1] == ' ' {
		end--
	}
	if end == len(line) {
		return line
	}
	i := strings.LastIndexByte(line[:end], '\x1b')
	if i < 0 {
		return line[:end]
	}
	if tail := line[i:end]; strings.HasPrefix(tail, "\x1b[m") || strings.HasPrefix(tail, "\x1b[0m") {
		return line[:end]
	}
	return line
}

// rowEscapes is room for a row's escape sequences beside its cells.
const rowEscapes = 256

// rowsBuilder writes a table's rows one after the other into one buffer, so
// that a frame's rows cost an allocation or two, not two or three each.
// line is the row written since the last call: a part of the buffer, which
// stays valid as the buffer grows (what was written is never changed).
type rowsBuilder struct {
	strings.Builder
	from int
}

func (b *rowsBuilder) line() string {
	s := b.String()[b.from:]
	b.from = b.Len()
	return s
}
