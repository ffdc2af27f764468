package ui

import (
	"cmp"
	"strings"

	"github.com/clank-dev/clank/api"
)

// sortColumn is what the deployments table is sorted by; s cycles through
// them in this order, S reverses the direction.
type sortColumn int

const (
	sortNumber sortColumn = iota // newest first: the table's own order
	sortStatus
	sortKind
	sortImage
	sortAge
	sortBy
	sortColumnCount
)

// tableSort is the deployments table's order. The zero value is the
// default: by number, newest first (the order the daemon pages in). Ties
// keep that order whatever the direction.
type tableSort struct {
	col sortColumn
	// reversed turns the column's natural direction around: numbers and
	// ages naturally go newest first, the others A to Z.
	reversed bool
}

func (s tableSort) isDefault() bool { return s.col == sortNumber && !s.reversed }

// next is the sort by the following column, in its natural direction.
func (s tableSort) next() tableSort {
	return tableSort{col: (s.col + 1) % sortColumnCount}
}

func (s tableSort) reverse() tableSort { return tableSort{col: s.col, reversed: !s.reversed} }

// column is the table column the sort is by.
func (s tableSort) column() int {
	return [...]int{sortNumber: depNum, sortStatus: depStatus, sortKind: depKind,
		sortImage: depImage, sortAge: depAge, sortBy: depBy}[s.col]
}

// ascending reports whether the column's values go up down the table (the
// arrow in the header): newest first is descending numbers, ascending ages.
func (s tableSort) ascending() bool {
	natural := s.col != sortNumber
	return natural != s.reversed
}

func (s tableSort) arrow() string {
	if s.ascending() {
		return "↑"
	}
	return "↓"
}

// String says the order in words, for the table's title.
func (s tableSort) String() string {
	switch {
	case s.isDefault():
		return "newest first"
	case s.col == sortNumber || s.col == sortAge:
		if s.reversed == (s.col == sortAge) {
			return "oldest first"
		}
		return "newest first"
	}
	return "by " + strings.ToLower(sortNames[s.col]) + " " + s.arrow()
}

var sortNames = [...]string{sortNumber: "#", sortStatus: "STATUS", sortKind: "KIND",
	sortImage: "IMAGE", sortAge: "AGE", sortBy: "BY"}

// statusRank orders statuses by how much they matter now: in progress, live,
// then past.
var statusRank = map[string]int{
	"DEPLOYING": 0, "HEALTH_CHECKING": 1, "ACTIVE": 2, "DRAINING": 3,
	"INACTIVE": 4, "FAILED": 5, "CANCELLED": 6,
}

func rankOf(status string) int {
	if r, ok := statusRank[status]; ok {
		return r
	}
	return len(statusRank)
}

// compare orders two deployments by the sort (0 when they tie: the caller
// keeps them newest first).
func (s tableSort) compare(a, b *api.Deployment) int {
	var c int
	switch s.col {
	case sortNumber:
		c = -cmp.Compare(a.Number, b.Number)
	case sortStatus:
		c = cmp.Compare(rankOf(a.Status), rankOf(b.Status))
	case sortKind:
		c = strings.Compare(kindText(a), kindText(b))
	case sortImage:
		c = strings.Compare(a.Image, b.Image)
	case sortAge:
		c = b.CreatedAt.Compare(a.CreatedAt) // youngest first
	case sortBy:
		c = strings.Compare(strings.ToLower(a.TriggeredBy), strings.ToLower(b.TriggeredBy))
	}
	if s.reversed {
		c = -c
	}
	return c
}

// setSort re-sorts the view, the cursor staying on its deployment.
func (t *deploymentsTable) setSort(s tableSort) {
	keep := t.selectedNumber()
	t.sort = s
	t.refilter()
	if keep > 0 {
		t.cursor = t.indexOf(keep)
	}
	t.clamp()
}
