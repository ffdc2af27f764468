package ui

import (
	"strings"
	"testing"

	uv "github.com/charmbracelet/ultraviolet"
	"github.com/charmbracelet/x/ansi"
)

// TestNarrowWidth checks narrowWidth's shortcut against the measure it
// stands for: every glyph it counts as one cell is one cell for
// ansi.StringWidth, alone and beside ASCII and other glyphs, and what it
// does not know it leaves to the slow way.
func TestNarrowWidth(t *testing.T) {
	var glyphs []rune
	for r := rune(0x80); r <= 0x10ffff; r++ {
		if narrowRune(r) {
			glyphs = append(glyphs, r)
		}
	}
	if len(glyphs) < 600 {
		t.Fatalf("only %d glyphs counted as narrow", len(glyphs))
	}
	for _, r := range glyphs {
		g := string(r)
		for _, s := range []string{g, "a" + g, g + "a", g + g, "# " + g + " DEPLOYING", g + "│" + g} {
			n, narrow := narrowWidth(s)
			if !narrow || n != ansi.StringWidth(s) {
				t.Fatalf("narrowWidth(%q) = %d, %v; ansi.StringWidth = %d", s, n, narrow, ansi.StringWidth(s))
			}
			if got, want := cellWidth(s), ansi.StringWidth(s); got != want {
				t.Fatalf("cellWidth(%q) = %d, want %d", s, got, want)
			}
			for _, w := range []int{1, 2, 5, 40} {
				if got := fit(s, w); ansi.StringWidth(got) != w || got != slowFit(s, w) {
					t.Fatalf("fit(%q, %d) = %q, want %q", s, w, got, slowFit(s, w))
				}
			}
		}
	}
	// Styled: the sequences take no cell.
	st := DefaultStyles()
	for _, s := range []string{
		st.paneTitle("web deployments", true), st.Dim.Render("newest first "), "\x1b[1mx\x1b[m",
		st.Logo.Render("clank") + "  " + st.HeaderOK.Render("docker up"), "\x1b[38;2;1;2;3;48;5;99m● ACTIVE\x1b[0m  ",
		string(st.paints.status["FAILED"].selected) + "✗ FAILED\x1b[m",
	} {
		n, narrow := narrowWidth(s)
		if !narrow || n != ansi.StringWidth(s) {
			t.Errorf("narrowWidth(%q) = %d, %v; ansi.StringWidth = %d", s, n, narrow, ansi.StringWidth(s))
		}
		for _, w := range []int{3, 12, 40} {
			if got := fit(s, w); got != slowFit(s, w) {
				t.Errorf("fit(%q, %d) = %q, want %q", s, w, got, slowFit(s, w))
			}
		}
	}
	// Left to the slow way: wide, emoji, joined or invisible characters,
	// escape sequences other than whole CSI ones.
	for _, s := range []string{"◽", "◾", "❄\ufe0f", "a\u0301", "日本", "👍", "a\u200db", "\t", "soft\u00adhyphen",
		"\x1b]8;;http://x\x1b\\link", "\x1b[1", "x\x1b", "\x1bPq\x1b\\", "\x1b[1\x07m"} {
		if _, narrow := narrowWidth(s); narrow {
			t.Errorf("narrowWidth(%q) claims to know its width", s)
		}
		if got, want := cellWidth(s), ansi.StringWidth(s); got != want {
			t.Errorf("cellWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

// slowFit is fit without its shortcuts.
func slowFit(s string, w int) string {
	n := ansi.StringWidth(s)
	if n > w {
		s = ansi.Truncate(s, w, "…")
		n = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", max(w-n, 0))
}

// TestTrimBlankKeepsTheScreen draws lines as Bubble Tea's renderer does
// (into a cleared cell buffer) with and without their trailing blanks left
// out: every cell must be the same, blanks under a style kept.
func TestTrimBlankKeepsTheScreen(t *testing.T) {
	st := DefaultStyles()
	p := st.paints
	sel := p.text.pick(true)
	lines := map[string]bool{ // line: whether blanks are left out
		"plain   ":                              true,
		"       ":                               true,
		"no blanks":                             false,
		st.Dim.Render("dim") + "    ":           true,
		st.Dim.Render("dim    "):                false, // coloured blanks: a reset after them
		string(sel) + "selected    \x1b[m":      false,
		string(sel) + "selected    ":            false, // a background left on
		st.ColumnHeader.Render("BY") + "   ":    true,
		st.ColumnHeader.Render("BY   "):         false,
		"\x1b[1mbold\x1b[0m  ":                  true,
		"\x1b]8;;http://x\x1b\\link  ":          false,
		fit(st.Flash.Render(" a flash"), 40):    true,
		"│" + st.Dim.Render("●") + " ACTIVE   ": true,
	}
	for line, trims := range lines {
		got := trimBlank(line)
		if (got != line) != trims {
			t.Errorf("trimBlank(%q) = %q: trimmed %v, want %v", line, got, got != line, trims)
		}
		if !sameOnScreen(line, got, 60) {
			t.Errorf("%q trimmed to %q draws another screen", line, got)
		}
	}
}

// sameOnScreen says whether a and b draw the same cells on a cleared line
// of w cells, as Bubble Tea's renderer draws a frame.
func sameOnScreen(a, b string, w int) bool {
	ba, bb := uv.NewScreenBuffer(w, 1), uv.NewScreenBuffer(w, 1)
	ba.Clear()
	bb.Clear()
	uv.NewStyledString(a).Draw(ba, ba.Bounds())
	uv.NewStyledString(b).Draw(bb, bb.Bounds())
	for x := range w {
		if !ba.CellAt(x, 0).Equal(bb.CellAt(x, 0)) {
			return false
		}
	}
	return true
}
