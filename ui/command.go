package ui

import (
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// The `:` command mode, as in k9s: a one-line prompt in the footer. A
// service's name (or `service NAME`) jumps to its deployments; an action's
// name runs what its key runs, on what is selected, or first selects the
// service named after it (`:rollback web`). tab completes, esc cancels; a
// command it does not know changes nothing and says so.

// command is one command of the `:` prompt.
type command struct {
	name    string
	aliases []string
	help    string
	// run runs it with what followed its name (none, or a service's name:
	// the service is selected first, as if from the services list).
	run func(m *Model) tea.Cmd
}

func (m *Model) commands() []command {
	return []command{
		{name: "service", aliases: []string{"svc", "s"}, help: "NAME: its deployments"},
		{name: "services", help: "the services list", run: func(m *Model) tea.Cmd {
			m.focus = paneServices
			return nil
		}},
		{name: "rollback", help: "r: roll back", run: func(m *Model) tea.Cmd { return m.act("rollback") }},
		{name: "redeploy", help: "R: redeploy", run: func(m *Model) tea.Cmd { return m.act("redeploy") }},
		{name: "deploy", help: "d: deploy", run: func(m *Model) tea.Cmd { return m.act("deploy") }},
		{name: "logs", aliases: []string{"log"}, help: "l: logs", run: func(m *Model) tea.Cmd { return m.openLogs() }},
		{name: "unfreeze", help: "u: unfreeze pushes", run: func(m *Model) tea.Cmd { return m.unfreeze() }},
		{name: "delete", help: "D: delete the service", run: func(m *Model) tea.Cmd { return m.act(kindDelete) }},
		{name: "copy", aliases: []string{"copy-id"}, help: "c: copy the deployment's id", run: func(m *Model) tea.Cmd { return m.copyID() }},
		{name: "copy-digest", aliases: []string{"digest"}, help: "C: copy its image digest", run: func(m *Model) tea.Cmd { return m.copyDigest() }},
		{name: "help", aliases: []string{"?"}, help: "the keys", run: func(m *Model) tea.Cmd {
			m.showHelp = true
			return nil
		}},
		{name: "quit", aliases: []string{"q", "q!", "exit"}, help: "quit", run: func(m *Model) tea.Cmd { return m.quit() }},
	}
}

// lookupCommand finds a command by its name or an alias.
func lookupCommand(cmds []command, name string) *command {
	for i := range cmds {
		if cmds[i].name == name || slices.Contains(cmds[i].aliases, name) {
			return &cmds[i]
		}
	}
	return nil
}

// commandInput is the `:` prompt.
type commandInput struct {
	filterInput // the same editing keys as the filter's
}

// runCommand runs the prompt's line. It changes nothing but the footer
// when the line is not a command.
func (m *Model) runCommand(line string) tea.Cmd {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	name, args := fields[0], fields[1:]
	cmds := m.commands()
	c := lookupCommand(cmds, name)
	if c == nil {
		if m.services.find(name) != nil && len(args) == 0 {
			return m.jumpTo(name)
		}
		m.flash = "unknown command " + strconv.Quote(strings.TrimSpace(line)) + ": not a command or a service (: then tab lists them)"
		return nil
	}
	if c.name == "service" {
		if len(args) != 1 || m.services.find(args[0]) == nil {
			m.flash = ":service NAME: no service " + strconv.Quote(strings.Join(args, " "))
			return nil
		}
		return m.jumpTo(args[0])
	}
	switch {
	case len(args) > 1 || len(args) == 1 && m.services.find(args[0]) == nil:
		m.flash = ":" + c.name + ": no service " + strconv.Quote(strings.Join(args, " "))
		return nil
	case len(args) == 1:
		// As if from the services list, the service selected.
		cmd := m.selectService(args[0])
		m.focus = paneServices
		return tea.Batch(cmd, c.run(m))
	}
	return c.run(m)
}

// selectService puts the services list's cursor on name (clearing a filter
// that hides it).
func (m *Model) selectService(name string) tea.Cmd {
	l := &m.services
	before := l.selectedName()
	if !slices.ContainsFunc(l.shown, func(i int) bool { return l.rows[i].Name == name }) {
		l.filter = ""
	}
	l.refilter(name)
	return m.followSelection(before)
}

// jumpTo shows a service's deployments, focused.
func (m *Model) jumpTo(name string) tea.Cmd {
	cmd := m.selectService(name)
	m.focus = paneServices // openService focuses them
	return tea.Batch(cmd, m.openService())
}

// completions are the commands and service names that start with the
// prompt's last word.
func (m *Model) completions(line string) []string {
	fields := strings.Fields(line)
	word := ""
	if len(fields) > 0 && !strings.HasSuffix(line, " ") {
		word = fields[len(fields)-1]
	}
	var out []string
	cmds := m.commands()
	if len(fields) == 0 || len(fields) == 1 && word != "" {
		for _, c := range cmds {
			if strings.HasPrefix(c.name, word) {
				out = append(out, c.name)
			}
		}
	}
	services := len(fields) <= 1 || lookupCommand(cmds, fields[0]) != nil
	for _, r := range m.services.rows {
		if services && strings.HasPrefix(r.Name, word) {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// complete extends the prompt's last word to the longest prefix its
// completions share.
func (m *Model) complete() {
	line := m.command.value
	cands := m.completions(line)
	if len(cands) == 0 {
		return
	}
	prefix := cands[0]
	for _, c := range cands[1:] {
		for !strings.HasPrefix(c, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	start := strings.LastIndexByte(line, ' ') + 1
	line = line[:start] + prefix
	if len(cands) == 1 {
		line += " "
	}
	m.command.value = line
}

func (m *Model) handleCommandKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.keys
	switch {
	case key.Matches(msg, k.Back):
		m.commanding = false
		m.command.value = ""
	case msg.String() == "enter":
		m.commanding = false
		line := m.command.value
		m.command.value = ""
		return m.runCommand(line)
	case msg.String() == "tab":
		m.complete()
	default:
		m.command.handle(msg)
	}
	return nil
}

// commandLine is the footer while the prompt is open: what was typed, and
// what it could become.
func (m *Model) commandLine() string {
	st := m.c.styles
	line := st.PaneTitleFocused.Render(" :") + m.command.value + "█"
	hint := ""
	fields := strings.Fields(m.command.value)
	if c := m.exactCommand(fields); c != nil && c.help != "" && strings.HasSuffix(m.command.value, " ") {
		hint = c.help
	} else if cands := m.completions(m.command.value); len(cands) > 0 {
		hint = strings.Join(cands, " ")
	} else if m.command.value != "" {
		hint = "no such command or service"
	}
	if hint != "" {
		line += "  " + st.Dim.Render(hint)
	}
	tail := st.Dim.Render("  tab complete · enter run · esc cancel")
	if cellWidth(line)+cellWidth(tail) <= m.width {
		line += tail
	}
	return fit(line, m.width)
}

func (m *Model) exactCommand(fields []string) *command {
	if len(fields) == 0 {
		return nil
	}
	return lookupCommand(m.commands(), fields[0])
}

// copyTarget is the deployment c and C copy from: the one in detail, the
// one selected, or (from the services list) the service's ACTIVE one when
// its row is loaded. what names it for the footer.
func (m *Model) copyTarget() (d *api.Deployment, what string) {
	switch {
	case m.focus == paneRight && m.right == showDetail && m.detail.dep != nil:
		d = m.detail.dep
	case m.focus == paneRight && m.right == showDeployments:
		d = m.deps.selected()
	case m.focus == paneRight && m.right == showLogs:
		d = nil
	default:
		r := m.services.selected()
		if r == nil || r.ActiveDeploymentID == nil {
			return nil, ""
		}
		if m.deps.service == r.Name {
			for i := range m.deps.rows {
				if m.deps.rows[i].ID == *r.ActiveDeploymentID {
					d = &m.deps.rows[i]
				}
			}
		}
		if d == nil {
			// Its id is known without the row.
			return &api.Deployment{ID: *r.ActiveDeploymentID, Service: r.Name, Number: r.ActiveNumber}, ""
		}
	}
	if d == nil {
		return nil, ""
	}
	return d, d.Service + " #" + strconv.Itoa(d.Number)
}

// copyID puts the deployment's id on the clipboard (OSC 52: the terminal's
// clipboard, over SSH too).
func (m *Model) copyID() tea.Cmd {
	d, what := m.copyTarget()
	if d == nil {
		m.flash = "nothing to copy: select a deployment"
		return nil
	}
	if what == "" {
		what = d.Service + " #" + strconv.Itoa(d.Number)
	}
	m.flash = "copied " + what + "'s id " + d.ID + " (OSC 52: the terminal's clipboard)"
	return tea.SetClipboard(d.ID)
}

// copyDigest puts the deployment's image digest on the clipboard.
func (m *Model) copyDigest() tea.Cmd {
	d, what := m.copyTarget()
	switch {
	case d == nil:
		m.flash = "nothing to copy: select a deployment"
		return nil
	case what == "":
		m.flash = "open " + d.Service + "'s deployments to copy the ACTIVE one's digest"
		return nil
	case d.ImageDigest == "":
		m.flash = what + " has no image digest (its image was never resolved)"
		return nil
	}
	m.flash = "copied " + what + "'s image digest " + d.ImageDigest + " (OSC 52)"
	return tea.SetClipboard(d.ImageDigest)
}
