package engine

import "context"

// RefreshAvailability checks every image of a deployment that was ever
// ACTIVE now (each distinct one once), as the background refresh does.
func (e *Engine) RefreshAvailability(ctx context.Context) { e.recheckAll(ctx, false) }
