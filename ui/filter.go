package ui

import (
	"unicode"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
)

// filterInput is the one-line prompt that `/` opens in the footer.
type filterInput struct {
	value string
}

// handle edits the value with a key; it reports whether the value changed.
func (f *filterInput) handle(msg tea.KeyPressMsg) bool {
	switch msg.String() {
	case "backspace", "ctrl+h":
		if f.value == "" {
			return false
		}
		_, n := utf8.DecodeLastRuneInString(f.value)
		f.value = f.value[:len(f.value)-n]
		return true
	case "ctrl+u":
		changed := f.value != ""
		f.value = ""
		return changed
	}
	if msg.Text == "" {
		return false
	}
	for _, r := range msg.Text {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	f.value += msg.Text
	return true
}

func (f *filterInput) view(st *Styles, width int) string {
	return fit(st.PaneTitleFocused.Render(" /")+f.value+"█"+st.Dim.Render("   enter keep · esc clear"), width)
}
