package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Connection settings.
const (
	// BusyTimeout is how long a statement waits for a lock another connection
	// (or process) holds before failing with SQLITE_BUSY.
	BusyTimeout = 5 * time.Second
	// readConns bounds the read pool; WAL readers do not block each other.
	readConns = 4
)

// Store is the SQLite-backed state of Clank. It is safe for concurrent use.
type Store struct {
	w *sql.DB // the single write connection: BEGIN IMMEDIATE transactions
	r *sql.DB // read-only pool

	listNewest *sql.Stmt // ListDeployments, the dashboard's hot query

	trim eventTrim // keeps each service's events bounded (SetKeepEvents)
	logs logBounds // how much of a removed container's log is kept (SetKeepLogs)
}

// Open opens (creating it and its directories if needed) the database at
// path and applies any pending migrations.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// The file holds env values: create it private. SQLite gives its -wal and
	// -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	f.Close()

	w, err := sql.Open("sqlite", dsn(abs, "&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", dsn(abs, "&_query_only=1"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	list, err := r.PrepareContext(ctx, listDeploymentsQuery)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	st := &Store{w: w, r: r, listNewest: list}
	st.SetKeepEvents(DefaultKeepEvents)
	st.SetKeepLogs(DefaultKeepLogLines, DefaultKeepLogBytes)
	return st, nil
}

// dsn is the driver name for path with the pragmas every pooled connection
// needs, plus extra query parameters.
func dsn(path, extra string) string {
	// SQLite reads "file:" names as URIs: escape what a URI would take apart.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc +
		fmt.Sprintf("?_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" +
		extra
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.listNewest.Close(), s.r.Close(), s.w.Close())
}

// queryer is what both *sql.DB and *sql.Tx offer for reads.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the single write
// connection) and commits it if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// now is the current time as the store keeps it: UTC, no monotonic reading.
func now() time.Time { return time.Now().UTC().Round(0) }

// unixNano and fromUnixNano are how times are stored (UTC unix nanoseconds):
// a time read back is Equal to the one written.
func unixNano(t time.Time) int64 { return t.UnixNano() }

func fromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromUnixNano(n.Int64)
	return &t
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
