package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds of the logs kept from removed containers (SetKeepLogs).
const (
	// DefaultKeepLogLines and DefaultKeepLogBytes bound the log kept per
	// deployment: the newest lines, as many as both allow.
	DefaultKeepLogLines = 1000
	DefaultKeepLogBytes = 256 << 10
	// KeepLogDeployments is how many deployments of a service keep the logs
	// of their removed containers: those whose containers went last.
	KeepLogDeployments = 20
)

// KeptLog is the tail of a removed container's log, kept for its deployment.
type KeptLog struct {
	DeploymentID string // the deployment the container was made for
	Service      string
	ContainerID  string
	RemovedAt    time.Time
	Text         []byte // as the container wrote it: stdout and stderr, interleaved
	Cut          bool   // older output was dropped to stay within the bounds
}

// logBounds is how much of a removed container's log the store keeps per
// deployment; lines <= 0 keeps none.
type logBounds struct {
	sync.Mutex
	lines, bytes int
}

// SetKeepLogs bounds the log kept per deployment from its removed
// containers to the newest lines and bytes (0 restores the default of
// each); lines < 0 keeps none.
func (s *Store) SetKeepLogs(lines, bytes int) {
	if lines == 0 {
		lines = DefaultKeepLogLines
	}
	if bytes <= 0 {
		bytes = DefaultKeepLogBytes
	}
	s.logs.Lock()
	s.logs.lines, s.logs.bytes = lines, bytes
	s.logs.Unlock()
}

// KeepLogBounds says how much log KeepLog keeps per deployment; lines <= 0
// means none.
func (s *Store) KeepLogBounds() (lines, bytes int) {
	s.logs.Lock()
	defer s.logs.Unlock()
	return s.logs.lines, s.logs.bytes
}

// KeepLog keeps l, cut to the bounds, beside what the deployment kept from
// its other containers: all of it together stays within the bounds (the
// oldest output goes first), and only the KeepLogDeployments deployments of
// the service that kept a log last keep theirs. It does nothing when the
// bounds keep none or l is empty.
func (s *Store) KeepLog(ctx context.Context, l KeptLog) error {
	lines, size := s.KeepLogBounds()
	if lines <= 0 {
		return nil
	}
	text, cut := TailLog(l.Text, lines, size)
	if len(text) == 0 {
		return nil
	}
	at := l.RemovedAt
	if at.IsZero() {
		at = now()
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kept_logs (deployment_id, service, container_id, removed_at, cut, text)
			VALUES (?, ?, ?, ?, ?, ?)`, l.DeploymentID, l.Service, l.ContainerID, unixNano(at), cut, text); err != nil {
			return err
		}
		if err := boundDeploymentLogs(ctx, tx, l.DeploymentID, lines, size); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM kept_logs WHERE service = ?1 AND deployment_id NOT IN (
			SELECT deployment_id FROM kept_logs WHERE service = ?1
			GROUP BY deployment_id ORDER BY MAX(id) DESC LIMIT ?2)`, l.Service, KeepLogDeployments)
		return err
	})
	if err != nil {
		return fmt.Errorf("keep the log of container %.12s of deployment %s: %w", l.ContainerID, l.DeploymentID, err)
	}
	return nil
}

// boundDeploymentLogs cuts a deployment's kept logs, newest first, to lines
// and size all together: the first that does not fit whole keeps its end,
// the older ones go.
func boundDeploymentLogs(ctx context.Context, tx *sql.Tx, deploymentID string, lines, size int) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, text FROM kept_logs WHERE deployment_id = ? ORDER BY id DESC`, deploymentID)
	if err != nil {
		return err
	}
	type row struct {
		id   int64
		text []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.text); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, r := range all {
		n := countLines(r.text)
		switch {
		case n <= lines && len(r.text) <= size:
			lines, size = lines-n, size-len(r.text)
			continue
		case lines > 0 && size > 0:
			text, _ := TailLog(r.text, lines, size)
			lines, size = 0, 0
			if len(text) > 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE kept_logs SET text = ?, cut = 1 WHERE id = ?`, text, r.id); err != nil {
					return err
				}
				continue
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM kept_logs WHERE id = ?`, r.id); err != nil {
			return err
		}
	}
	return nil
}

// KeptLogs returns what was kept of the removed containers of a deployment,
// oldest first: those made for it, and containerID's (the container it
// recorded, which it may have adopted from a warm standby) if not "".
func (s *Store) KeptLogs(ctx context.Context, deploymentID, containerID string) ([]KeptLog, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT deployment_id, service, container_id, removed_at, cut, text FROM kept_logs
		WHERE deployment_id = ?1 OR (?2 != '' AND container_id = ?2) ORDER BY id`, deploymentID, containerID)
	if err != nil {
		return nil, fmt.Errorf("kept logs of deployment %s: %w", deploymentID, err)
	}
	defer rows.Close()
	var out []KeptLog
	for rows.Next() {
		var l KeptLog
		var at int64
		if err := rows.Scan(&l.DeploymentID, &l.Service, &l.ContainerID, &at, &l.Cut, &l.Text); err != nil {
			return nil, fmt.Errorf("kept logs of deployment %s: %w", deploymentID, err)
		}
		l.RemovedAt = fromUnixNano(at)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kept logs of deployment %s: %w", deploymentID, err)
	}
	return out, nil
}

// TailLog is the end of text within lines and size bytes: whole lines when
// the last line fits, else the end of the last line (from a UTF-8 character
// boundary). cut says whether anything was dropped.
func TailLog(text []byte, lines, size int) (tail []byte, cut bool) {
	if lines <= 0 || size <= 0 {
		return nil, len(text) > 0
	}
	start := len(text)
	end := len(text)
	if end > 0 && text[end-1] == '\n' {
		end-- // the last line's own newline
	}
	for n := 0; n < lines; n++ {
		i := bytes.LastIndexByte(text[:end], '\n')
		if len(text)-(i+1) > size {
			break
		}
		start = i + 1
		if i < 0 {
			break
		}
		end = i
	}
	if start == len(text) && len(text) > 0 {
		// Not even the last line fits: keep its end.
		start = len(text) - size
		for start < len(text) && !utf8.RuneStart(text[start]) {
			start++
		}
	}
	return text[start:], start > 0
}

// countLines counts text's lines, a last one without a newline included.
func countLines(text []byte) int {
	n := bytes.Count(text, []byte{'\n'})
	if len(text) > 0 && text[len(text)-1] != '\n' {
		n++
	}
	return n
}

// KeptLogIndex is when each deployment of a service last kept a log: by the
// deployment a container was made for, and by the container.
type KeptLogIndex struct {
	byDeployment, byContainer map[string]time.Time
}

// At is when deployment d last kept a log (as KeptLogs finds them), nil if never.
func (x KeptLogIndex) At(d Deployment) *time.Time {
	at, ok := x.byDeployment[d.ID]
	if c, found := x.byContainer[d.ContainerID]; found && d.ContainerID != "" && (!ok || c.After(at)) {
		at, ok = c, true
	}
	if !ok {
		return nil
	}
	return &at
}

// KeptLogIndex reads, in one query, when each deployment of service last kept a log.
func (s *Store) KeptLogIndex(ctx context.Context, service string) (KeptLogIndex, error) {
	x := KeptLogIndex{byDeployment: map[string]time.Time{}, byContainer: map[string]time.Time{}}
	rows, err := s.r.QueryContext(ctx, `SELECT deployment_id, container_id, MAX(removed_at) FROM kept_logs
		WHERE service = ? GROUP BY deployment_id, container_id`, service)
	if err != nil {
		return x, fmt.Errorf("kept logs of %s: %w", service, err)
	}
	defer rows.Close()
	for rows.Next() {
		var dep, container string
		var n int64
		if err := rows.Scan(&dep, &container, &n); err != nil {
			return x, fmt.Errorf("kept logs of %s: %w", service, err)
		}
		at := fromUnixNano(n)
		if prev, ok := x.byDeployment[dep]; !ok || at.After(prev) {
			x.byDeployment[dep] = at
		}
		x.byContainer[container] = at
	}
	if err := rows.Err(); err != nil {
		return x, fmt.Errorf("kept logs of %s: %w", service, err)
	}
	return x, nil
}
