-- 0005: per service, how a git push deploys it (--git-branch, --push-builds),
-- the freeze a rollback puts on pushes (frozen_at NULL when not frozen), the
-- image of the last push held while frozen, and a deletion that keeps the
-- service's deployment history (deleted_at NULL while the service exists).

ALTER TABLE services ADD COLUMN git_branch TEXT NOT NULL DEFAULT 'main';
ALTER TABLE services ADD COLUMN push_builds INTEGER NOT NULL DEFAULT 0 CHECK (push_builds IN (0, 1));
ALTER TABLE services ADD COLUMN frozen_at INTEGER;
ALTER TABLE services ADD COLUMN frozen_by TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN frozen_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN held_image TEXT NOT NULL DEFAULT '';
ALTER TABLE services ADD COLUMN deleted_at INTEGER;
