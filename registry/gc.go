package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// KeepFunc reports whether a deployment still needs the manifest
// repo@digest ("sha256:...").
type KeepFunc func(repo, digest string) bool

// ManifestRef names one manifest in the registry.
type ManifestRef struct {
	Repo   string
	Digest string
}

// GCResult says what a garbage collection did.
type GCResult struct {
	ManifestsRemoved []ManifestRef // sorted by repo, then digest
	ManifestsKept    int           // manifests still in the registry
	BlobsRemoved     int           // blobs (layers, configs, manifests) deleted from storage
	Duration         time.Duration // including the wait for a quiet moment
}

// GC deletes the manifests nobody needs, then sweeps the blobs they leave
// unreferenced (distribution's storage.MarkAndSweep).
//
// A manifest stays when a tag points at it (a tag is a statement that the
// image may be deployed next), when keep says a deployment needs it, when a
// manifest that stays references it (the platform images of a kept index),
// or when its subject stays (signatures and other referrers of a kept image).
// Everything else, typically the old digests of a tag pushed again, goes.
//
// GC is stop-the-world for writes: it waits until no write has finished for
// the quiet period (a push uploads blobs before the manifest that references
// them) and holds every push until it is done. It gives up when ctx ends.
func (s *Server) GC(ctx context.Context, keep KeepFunc) (GCResult, error) {
	start := time.Now()
	if keep == nil {
		keep = func(string, string) bool { return false }
	}
	if err := s.stopWrites(ctx); err != nil {
		return GCResult{}, fmt.Errorf("registry gc: %w", err)
	}
	defer s.writes.Unlock()

	res, err := s.removeUnneededManifests(ctx, keep)
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	before, err := s.countBlobs(ctx)
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	if before == 0 {
		// Nothing to sweep, and MarkAndSweep fails on a store with no blobs.
		res.Duration = time.Since(start)
		return res, nil
	}
	if err := storage.MarkAndSweep(ctx, s.driver, s.ns, storage.GCOpts{Quiet: true}); err != nil {
		return res, fmt.Errorf("registry gc: sweep: %w", err)
	}
	after, err := s.countBlobs(ctx)
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	res.BlobsRemoved = before - after
	res.Duration = time.Since(start)
	return res, nil
}

// stopWrites takes the write gate once no write is in flight and none has
// finished within the quiet period.
func (s *Server) stopWrites(ctx context.Context) error {
	const poll = 20 * time.Millisecond
	for {
		if s.writes.TryLock() {
			idle := time.Since(time.Unix(0, s.lastWrite.Load()))
			if idle >= s.gcQuiet {
				return nil
			}
			s.writes.Unlock()
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for pushes to finish: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// gcManifest is what GC reads of one manifest.
type gcManifest struct {
	refs    []digest.Digest
	subject digest.Digest
}

func (s *Server) removeUnneededManifests(ctx context.Context, keep KeepFunc) (GCResult, error) {
	var res GCResult
	repos, ok := s.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return res, errors.New("storage cannot enumerate repositories")
	}
	vacuum := storage.NewVacuum(ctx, s.driver)
	err := repos.Enumerate(ctx, func(repo string) error {
		removed, kept, err := s.collectRepo(ctx, repo, keep)
		if err != nil {
			return fmt.Errorf("repository %s: %w", repo, err)
		}
		res.ManifestsKept += kept
		for _, m := range removed {
			if err := vacuum.RemoveManifest(repo, m.dgst, m.tags); err != nil {
				return fmt.Errorf("remove %s@%s: %w", repo, m.dgst, err)
			}
			res.ManifestsRemoved = append(res.ManifestsRemoved, ManifestRef{Repo: repo, Digest: m.dgst.String()})
		}
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return res, err
	}
	sort.Slice(res.ManifestsRemoved, func(i, j int) bool {
		a, b := res.ManifestsRemoved[i], res.ManifestsRemoved[j]
		if a.Repo != b.Repo {
			return a.Repo < b.Repo
		}
		return a.Digest < b.Digest
	})
	return res, nil
}

type unneeded struct {
	dgst digest.Digest
	tags []string // every tag of the repository: its history may name dgst
}

// collectRepo marks what stays in one repository and returns the rest.
func (s *Server) collectRepo(ctx context.Context, repo string, keep KeepFunc) ([]unneeded, int, error) {
	named, err := reference.WithName(repo)
	if err != nil {
		return nil, 0, err
	}
	repository, err := s.ns.Repository(ctx, named)
	if err != nil {
		return nil, 0, err
	}
	ms, err := repository.Manifests(ctx)
	if err != nil {
		return nil, 0, err
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, 0, errors.New("manifest store cannot enumerate")
	}
	manifests := map[digest.Digest]gcManifest{}
	err = enum.Enumerate(ctx, func(d digest.Digest) error {
		m, err := ms.Get(ctx, d)
		if err != nil {
			return fmt.Errorf("read manifest %s: %w", d, err)
		}
		gm := gcManifest{}
		for _, ref := range m.References() {
			gm.refs = append(gm.refs, ref.Digest)
		}
		if _, payload, err := m.Payload(); err == nil {
			var parsed referrersManifest
			if json.Unmarshal(payload, &parsed) == nil && parsed.Subject != nil {
				gm.subject = parsed.Subject.Digest
			}
		}
		manifests[d] = gm
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return nil, 0, err
	}

	tags, err := repository.Tags(ctx).All(ctx)
	var unknownRepo distribution.ErrRepositoryUnknown
	if err != nil && !errors.As(err, &unknownRepo) && !errors.As(err, &notFound) {
		return nil, 0, fmt.Errorf("list tags: %w", err)
	}
	marked := map[digest.Digest]bool{}
	var mark func(d digest.Digest)
	mark = func(d digest.Digest) {
		m, ok := manifests[d]
		if !ok || marked[d] {
			return
		}
		marked[d] = true
		for _, ref := range m.refs {
			mark(ref) // only manifests are in the map: layers are MarkAndSweep's
		}
	}
	for _, tag := range tags {
		desc, err := repository.Tags(ctx).Get(ctx, tag)
		if err != nil {
			var unknownTag distribution.ErrTagUnknown
			if errors.As(err, &unknownTag) {
				continue
			}
			return nil, 0, fmt.Errorf("tag %s: %w", tag, err)
		}
		mark(desc.Digest)
	}
	for d := range manifests {
		if keep(repo, d.String()) {
			mark(d)
		}
	}
	// Referrers of what stays, to a fixed point (a signature of a signature).
	for changed := true; changed; {
		changed = false
		for d, m := range manifests {
			if !marked[d] && m.subject != "" && marked[m.subject] {
				mark(d)
				changed = true
			}
		}
	}

	var out []unneeded
	for d := range manifests {
		if !marked[d] {
			out = append(out, unneeded{dgst: d, tags: tags})
		}
	}
	return out, len(marked), nil
}

func (s *Server) countBlobs(ctx context.Context) (int, error) {
	n := 0
	err := s.ns.Blobs().Enumerate(ctx, func(digest.Digest) error {
		n++
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return 0, fmt.Errorf("count blobs: %w", err)
	}
	return n, nil
}
