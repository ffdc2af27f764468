package ui

import (
	"strings"
	"testing"

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
	// Left to the slow way: wide, emoji, joined or invisible characters,
	// escape sequences.
	for _, s := range []string{"◽", "◾", "❄\ufe0f", "a\u0301", "日本", "👍", "a\u200db", "\x1b[1mx\x1b[m", "\t", "soft\u00adhyphen"} {
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
