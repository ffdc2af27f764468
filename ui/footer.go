package ui

import (
	"strconv"

	"charm.land/bubbles/v2/key"

	"github.com/clank-dev/clank/api"
)

// The footer says what the keys do here: in this view, for this role, on
// what is selected. A key that would do nothing here is not shown (pressed
// anyway, it says why in the footer, or a viewer's modal says it explains
// only); `? help` and `q quit` always are.

// footerKeys are the keys the footer offers, most useful first.
func (m *Model) footerKeys() []key.Binding {
	k := m.c.keys
	admin := m.c.admin()
	var out []key.Binding
	with := func(b key.Binding, desc string) key.Binding {
		b.SetHelp(b.Help().Key, desc)
		return b
	}
	switch {
	case m.focus == paneServices:
		r := m.services.selected()
		if r == nil {
			break
		}
		out = append(out, k.Open)
		if admin {
			if t := m.rollbackTarget(r.Name); t != nil {
				out = append(out, with(k.Rollback, "rollback to #"+strconv.Itoa(t.Number)))
			}
			if r.ActiveDeploymentID != nil {
				out = append(out, k.Redeploy)
			}
			out = append(out, k.Deploy)
			if r.Frozen {
				out = append(out, k.Unfreeze)
			}
		}
		if r.ActiveDeploymentID != nil {
			out = append(out, k.Logs)
		}
		out = append(out, k.Filter, k.Switch)
	case m.right == showDeployments:
		d := m.deps.selected()
		if d != nil {
			out = append(out, k.Open)
			out = append(out, m.actionKeys(d)...)
			out = append(out, k.Logs)
		} else if admin && m.deps.service != "" {
			out = append(out, k.Deploy)
		}
		out = append(out, k.Filter)
		if m.deps.len() > 1 {
			out = append(out, k.Sort)
		}
		if m.deps.filter != "" {
			out = append(out, with(k.Back, "clear filter"))
		} else {
			out = append(out, with(k.Back, "services"))
		}
		if d != nil {
			out = append(out, k.CopyID)
		}
	case m.right == showDetail:
		out = append(out, with(k.Back, "deployments"))
		if d := m.detail.dep; d != nil {
			out = append(out, m.actionKeys(d)...)
		}
		out = append(out, k.Logs, with(k.Down, "scroll"), k.CopyID)
	case m.right == showLogs:
		out = append(out, m.logs.helpKeys(k)...) // the log viewer's own
	}
	return append(out, k.Command)
}

// actionKeys are the actions an admin may take on deployment d: roll back
// to it when it is rollback capable, redeploy it, deploy the service.
func (m *Model) actionKeys(d *api.Deployment) []key.Binding {
	if !m.c.admin() {
		return nil
	}
	k := m.c.keys
	var out []key.Binding
	n := "#" + strconv.Itoa(d.Number)
	if d.RollbackCapable && d.Status != "ACTIVE" {
		b := k.Rollback
		b.SetHelp("r", "rollback to "+n)
		out = append(out, b)
	}
	return append(out, k.Redeploy, k.Deploy)
}

// rollbackTarget is the deployment r rolls back to from the services list
// (the one activated most recently before the ACTIVE one), when the
// service's deployments are loaded; nil when none is known.
func (m *Model) rollbackTarget(service string) *api.Deployment {
	t := &m.deps
	if t.service != service {
		return nil
	}
	r := m.services.find(service)
	var best *api.Deployment
	for i := range t.rows {
		d := &t.rows[i]
		if d.ActivatedAt == nil || (r != nil && r.ActiveDeploymentID != nil && *r.ActiveDeploymentID == d.ID) || d.Status == "ACTIVE" {
			continue
		}
		if best == nil || d.ActivatedAt.After(*best.ActivatedAt) {
			best = d
		}
	}
	return best
}

// footerLine draws the footer's keys: as many as fit, then help and quit.
func (m *Model) keysLine() string {
	k := m.c.keys
	tail := []key.Binding{k.Help, k.Quit}
	keys := m.footerKeys()
	return m.c.lines.keys.get(bindingsKey(m.width, keys, tail), func() string {
		h := m.help
		h.SetWidth(0) // measured here, never cut by help
		for n := len(keys); n >= 0; n-- {
			line := " " + h.ShortHelpView(append(keys[:n:n], tail...))
			if cellWidth(line) <= m.width {
				return fit(line, m.width)
			}
		}
		return fit(" "+h.ShortHelpView(tail), m.width)
	})
}
