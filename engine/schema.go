package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/clank-dev/clank/store"
)

// ErrSchemaChange: a rollback or redeploy would run an image whose
// dev.clank.schema label differs from the ACTIVE deployment's, and the
// request did not allow it. It matches ErrRefused too.
var ErrSchemaChange = errors.New("schema change")

// SchemaChange is the difference between the schema the ACTIVE deployment
// runs and the one a rollback or redeploy would run.
type SchemaChange struct {
	From, To string
}

// schemaChange compares the ACTIVE deployment's schema with the target's.
// Deployments without a label (or recorded before labels were read) never
// make a change: they behave as they always did.
func schemaChange(current, target *store.Deployment) *SchemaChange {
	if current == nil || target == nil || current.Schema == "" || target.Schema == "" || current.Schema == target.Schema {
		return nil
	}
	return &SchemaChange{From: current.Schema, To: target.Schema}
}

// schemaRefusal is the refusal of a schema change nobody allowed: the reason
// names both values, and it is what an automatic rollback reports too.
func schemaRefusal(kind store.Kind, current, target *store.Deployment) error {
	return &refusal{
		msg: fmt.Sprintf("the %s to #%d changes the schema from %q (ACTIVE #%d) to %q: the code may not fit the data; allow the schema change to go ahead (--allow-schema-change)",
			kind, target.Number, current.Schema, current.Number, target.Schema),
		cause: ErrSchemaChange,
	}
}

// recordSchema reads the dev.clank.schema label of d's image, which is in the
// local engine by now, and records it on d.
func (e *Engine) recordSchema(ctx context.Context, d *store.Deployment) {
	info, err := e.rt.InspectImage(ctx, PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest))
	if err != nil {
		e.log.Warn("read the image's schema label", "deployment", d.ID, "err", err)
		return
	}
	schema := info.Labels[LabelSchema]
	if schema == "" {
		return
	}
	if err := e.store.SetSchema(ctx, d.ID, schema); err != nil {
		e.log.Warn("record the image's schema label", "deployment", d.ID, "err", err)
		return
	}
	d.Schema = schema
}
