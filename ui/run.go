package ui

import (
	"context"
	"fmt"

	tea "charm.land/bubbletea/v2"
)

// NewProgram returns the dashboard as a Bubble Tea program. The dashboard's
// Backend calls end with opts.Context (cancel it once the program has
// returned); the program itself ends when the user quits or is told to
// (Program.Quit). extra options come last (the SSH server passes the
// session's input, output and size).
func NewProgram(backend Backend, opts Options, extra ...tea.ProgramOption) *tea.Program {
	var po []tea.ProgramOption
	if opts.ColorProfile != 0 {
		po = append(po, tea.WithColorProfile(opts.ColorProfile))
	}
	return tea.NewProgram(New(backend, opts), append(po, extra...)...)
}

// Run shows the dashboard in this process's terminal until the user quits
// (nil) or ctx ends (an error wrapping tea.ErrProgramKilled).
func Run(ctx context.Context, backend Backend, opts Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts.Context = ctx
	if _, err := NewProgram(backend, opts, tea.WithContext(ctx)).Run(); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}
