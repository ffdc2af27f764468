package ui

import "charm.land/bubbles/v2/key"

// KeyMap holds every key binding of the dashboard, each declared once with its
// help text so the help views write themselves.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding

	Open, Switch, Back key.Binding

	Rollback, Redeploy, Deploy, Logs, Unfreeze, DeleteService key.Binding

	Filter, Help, Quit key.Binding

	// Sort cycles the deployments table's sort column, SortReverse turns
	// its direction around.
	Sort, SortReverse key.Binding

	// Command opens the `:` prompt; CopyID and CopyDigest put the
	// deployment's id or image digest on the terminal's clipboard.
	Command, CopyID, CopyDigest key.Binding

	// In the confirmation modal.
	Confirm, Cancel, NextButton, Press key.Binding
}

// DefaultKeyMap returns the keys the README lists ("Dashboard").
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "newest")),
		Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "oldest")),

		Open:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Switch: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "switch pane")),
		Back:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),

		Rollback:      key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rollback")),
		Redeploy:      key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "redeploy")),
		Deploy:        key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "deploy")),
		Logs:          key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "logs")),
		Unfreeze:      key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "unfreeze pushes")),
		DeleteService: key.NewBinding(key.WithKeys("D"), key.WithHelp("D", "delete service")),

		Filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Sort:        key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort by")),
		SortReverse: key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "reverse sort")),
		Command:     key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command")),
		CopyID:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "copy id")),
		CopyDigest:  key.NewBinding(key.WithKeys("C"), key.WithHelp("C", "copy digest")),
		Help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:        key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		Confirm:    key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "confirm")),
		Cancel:     key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "cancel")),
		NextButton: key.NewBinding(key.WithKeys("tab", "left", "right"), key.WithHelp("←/→", "choose")),
		Press:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "press")),
	}
}

// helpKeys adapts a set of bindings to help.KeyMap.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// screenHelp is the help of the main screen: the footer's short line and the
// columns of the `?` overlay.
func (k *KeyMap) screenHelp() helpKeys {
	return helpKeys{
		short: []key.Binding{k.Open, k.Rollback, k.Redeploy, k.Deploy, k.Logs, k.Filter, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Open, k.Switch, k.Back, k.Logs, k.Filter, k.Sort, k.SortReverse},
			{k.Rollback, k.Redeploy, k.Deploy, k.Unfreeze, k.DeleteService},
			{k.Command, k.CopyID, k.CopyDigest, k.Help, k.Quit},
		},
	}
}

// modalHelp is the help line of the confirmation modal.
func (k *KeyMap) modalHelp() helpKeys {
	return helpKeys{short: []key.Binding{k.Confirm, k.Cancel, k.NextButton, k.Press}}
}
