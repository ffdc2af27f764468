package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
)

// masked stands for an environment value: values are secrets and never shown.
const masked = "••••"

// inProgress reports whether a deployment status is still moving.
func inProgress(status string) bool {
	return status == "DEPLOYING" || status == "HEALTH_CHECKING"
}

// glyph is the one-cell mark before a status; spin is the spinner's frame,
// used while the status is in progress.
func glyph(status, spin string) string {
	switch status {
	case "ACTIVE":
		return "●"
	case "DRAINING":
		return "◐"
	case "INACTIVE":
		return "○"
	case "FAILED":
		return "✗"
	case "CANCELLED":
		return "⊘"
	case "NONE", "":
		return "·"
	case runtimeUnhealthy:
		return "◍"
	case runtimeCrashed:
		return "⊗"
	case runtimeRestarting:
		return "↻"
	}
	if inProgress(status) {
		return spin
	}
	return "•"
}

// Runtime states of an ACTIVE deployment (api.Deployment.Runtime), and the
// key of their style: an ACTIVE deployment that is not healthy is drawn as
// its runtime, not as a healthy ACTIVE.
const (
	runtimeHealthy    = "healthy"
	runtimeUnhealthy  = "unhealthy"
	runtimeCrashed    = "crashed"
	runtimeRestarting = "restarting"
)

// statusKey is what a status is drawn as: the runtime of an ACTIVE
// deployment that is not healthy, else the status.
func statusKey(status string, runtime *string) string {
	if status == "ACTIVE" && runtime != nil && *runtime != runtimeHealthy && *runtime != "" {
		return *runtime
	}
	return status
}

// statusCell is a status as a table shows it in w cells: its glyph, the
// status, and, when there is one, what it is beside it ("ACTIVE · crashed",
// "INACTIVE · warm, 4m left"). When the whole does not fit, the status
// word gives way to what is beside it ("✗ crashed", "○ warm, 4m left").
func statusCell(status string, runtime *string, warmUntil *time.Time, now time.Time, spin string, w int) string {
	key := statusKey(status, runtime)
	g := glyph(key, spin)
	var beside string
	switch {
	case key != status:
		beside = key
	case status == "INACTIVE" && warmUntil != nil && warmUntil.After(now):
		beside = warmText(*warmUntil, now)
	}
	if beside == "" {
		return g + " " + status
	}
	if long := g + " " + status + " · " + beside; len([]rune(long)) <= w {
		return long
	}
	return g + " " + beside
}

// warmText is a warm standby's countdown: "warm, 4m left".
func warmText(until, now time.Time) string {
	return "warm, " + age(now, now.Add(-until.Sub(now))) + " left"
}

// kindText says what a deployment is: "deploy", "rollback of #3", ...
func kindText(d *api.Deployment) string {
	if d.SourceNumber > 0 && d.Kind != "deploy" {
		return d.Kind + " of #" + strconv.Itoa(d.SourceNumber)
	}
	return d.Kind
}

// age is a compact duration since t: 45s, 12m, 3h, 5d, 7w, 2y.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(int(d/time.Second), 0)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d < 14*24*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d < 365*24*time.Hour:
		return strconv.Itoa(int(d/(7*24*time.Hour))) + "w"
	}
	return strconv.Itoa(int(d/(365*24*time.Hour))) + "y"
}

// stamp is a timestamp for detail views.
func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func cpusText(c float64) string {
	if c <= 0 {
		return noLimit
	}
	return strconv.FormatFloat(c, 'f', -1, 64)
}

// memoryText is a memory limit as the engine's plans say it ("64MiB"), so
// that the detail and the modal's diff read the same.
func memoryText(b int64) string {
	if b <= 0 {
		return noLimit
	}
	return engine.FormatMemory(b)
}

// noLimit is an unset CPU or memory limit, as the engine's plans say it.
const noLimit = "none"

func healthText(h api.HealthCheck) string {
	if h.Path == "" {
		return "none"
	}
	return fmt.Sprintf("%s every %s, timeout %s", h.Path, orDash(h.Interval), orDash(h.Timeout))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listText(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	return strings.Join(xs, ", ")
}

// shortID keeps the first 12 characters of an id, as docker does.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// fit truncates s (with an ellipsis) or pads it with spaces to exactly w cells.
// Plain text (ASCII and the dashboard's one-cell glyphs), the common case on
// the hot path, skips the grapheme scan.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if isPlainASCII(s) {
		switch {
		case len(s) == w:
			return s
		case len(s) < w:
			return s + spaces(w-len(s))
		}
		return s[:w-1] + "…"
	}
	n, narrow := narrowWidth(s)
	if !narrow {
		n = ansi.StringWidth(s)
	}
	if n > w {
		s = ansi.Truncate(s, w, "…")
		n = ansi.StringWidth(s)
	}
	if n < w {
		s += spaces(w - n)
	}
	return s
}

// cellWidth is how many cells s takes on screen, escape sequences aside.
func cellWidth(s string) int {
	if n, narrow := narrowWidth(s); narrow {
		return n
	}
	return ansi.StringWidth(s)
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// narrowWidth is the width of s when every character of it takes one cell
// on its own: printable ASCII and the dashboard's glyphs (status marks,
// spinner, sparkline, box drawing, arrows, the ellipsis), styled or not
// (CSI sequences such as SGR take no cell). None of them joins a neighbour
// into a wider cluster, so the width is the count of runes, what
// ansi.StringWidth says of them (TestNarrowWidth checks every one). narrow
// is false for anything else (other escape sequences, wide or combining
// characters, emoji): the caller measures those the slow way. It is a
// good part of a frame's cost otherwise: fit and cellWidth run for most
// cells of every row, and a status cell always holds a glyph.
func narrowWidth(s string) (n int, narrow bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b {
			end := csiEnd(s, i)
			if end < 0 {
				return 0, false
			}
			i = end
			continue
		}
		if c < 0x80 {
			if c < 0x20 || c == 0x7f {
				return 0, false
			}
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !narrowRune(r) {
			return 0, false
		}
		i += size
		n++
	}
	return n, true
}

// csiEnd is where the CSI sequence at s[i] ends (ESC [, parameter and
// intermediate bytes, a final byte), or -1 when s[i] starts no whole one.
func csiEnd(s string, i int) int {
	if i+1 >= len(s) || s[i+1] != '[' {
		return -1
	}
	for j := i + 2; j < len(s); j++ {
		switch c := s[j]; {
		case c >= 0x20 && c <= 0x3f:
		case c >= 0x40 && c <= 0x7e:
			return j + 1
		default:
			return -1
		}
	}
	return -1
}

// narrowRune says whether r is one of the one-cell glyphs narrowWidth
// counts without measuring.
func narrowRune(r rune) bool {
	switch {
	case r == '·', r == '…', r == '•', r == '✗', r == '❄':
		return true
	case r >= 0x2190 && r <= 0x21ff: // arrows: ↺ ↻
		return true
	case r >= 0x2200 && r <= 0x22ff: // mathematical operators: ∅ ⊘ ⊗
		return true
	case r >= 0x2500 && r <= 0x25fc: // box drawing, blocks, geometric shapes: │ ─ ▌ ▸ ▁ ● ○ ◐ ◍
		return true // but U+25FD and U+25FE, emoji of two cells
	case r >= 0x2800 && r <= 0x28ff: // braille: the spinner
		return true
	}
	return false
}

var blank = strings.Repeat(" ", 512)

// spaces returns n spaces, without allocating for common widths.
func spaces(n int) string {
	if n <= 0 {
		return ""
	}
	if n <= len(blank) {
		return blank[:n]
	}
	return strings.Repeat(" ", n)
}

// padLines makes exactly h lines of exactly w cells from s.
func padLines(s string, w, h int) []string {
	var lines []string
	if s != "" {
		lines = strings.Split(s, "\n")
	}
	out := make([]string, h)
	for i := range out {
		if i < len(lines) {
			out[i] = fit(lines[i], w)
		} else {
			out[i] = spaces(w)
		}
	}
	return out
}

// shortFingerprint shortens a key fingerprint in s ("alice (SHA256:0MoQ…)")
// to the first 8 characters of its hash, enough to tell keys apart on
// screen; what is recorded stays whole.
func shortFingerprint(s string) string {
	const prefix, keep = "SHA256:", 8
	i := strings.Index(s, prefix)
	if i < 0 {
		return s
	}
	from := i + len(prefix)
	end := from
	for end < len(s) && s[end] != ')' && s[end] != ' ' {
		end++
	}
	if end-from <= keep+1 {
		return s
	}
	return s[:from+keep] + "…" + s[end:]
}
