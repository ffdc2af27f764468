-- 0006: the dev.clank.schema label of a deployment's image ('' when it has
-- none, or it was not read yet), where an image's availability was confirmed
-- ('registry' or 'local'), and an index to keep each service's events bounded.

ALTER TABLE deployments ADD COLUMN schema TEXT NOT NULL DEFAULT '';
ALTER TABLE availability ADD COLUMN via TEXT NOT NULL DEFAULT '' CHECK (via IN ('', 'registry', 'local'));
CREATE INDEX events_service ON events(service, id);
