package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/auth"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxManifestBytes bounds the manifest body read to find its subject; it is
// distribution's own default limit for a manifest.
const maxManifestBytes = 4 << 20

// withReferrers adds what distribution v3.1.2 lacks of the OCI 1.1 referrers
// support: GET /v2/<name>/referrers/<digest>, answered by scanning the
// repository's manifests for a subject, and the OCI-Subject header on a
// manifest push that carries a subject (which tells clients not to maintain
// the referrers tag fallback themselves).
func (s *Server) withReferrers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, rest, ok := splitV2Path(r.URL.Path)
		switch {
		case ok && r.Method == http.MethodGet && strings.HasPrefix(rest, "referrers/"):
			s.serveReferrers(w, r, name, strings.TrimPrefix(rest, "referrers/"))
		case ok && r.Method == http.MethodPut && strings.HasPrefix(rest, "manifests/"):
			s.putManifest(next, w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// splitV2Path splits "/v2/<name>/<kind>/<ref>" into the repository name and
// "<kind>/<ref>" for the kinds this file handles.
func splitV2Path(p string) (name, rest string, ok bool) {
	p, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", false
	}
	for _, kind := range []string{"/referrers/", "/manifests/"} {
		if i := strings.LastIndex(p, kind); i > 0 {
			return p[:i], p[i+1:], true
		}
	}
	return "", "", false
}

func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, name, ref string) {
	// Served outside distribution's App, so the access check is made here.
	pull := auth.Access{Resource: auth.Resource{Type: "repository", Name: name}, Action: "pull"}
	if _, err := s.access.Authorized(r, pull); err != nil {
		refuse(w, r, err)
		return
	}
	subject, err := digest.Parse(ref)
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID", "invalid digest "+ref)
		return
	}
	named, err := reference.WithName(name)
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name "+name)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := s.referrers(r.Context(), named, subject, artifactType)
	if err != nil {
		writeRegistryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	index := ocispec.Index{
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: descs,
	}
	index.SchemaVersion = 2
	body, err := json.Marshal(index)
	if err != nil {
		writeRegistryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// referrersManifest is the part of an image manifest or index that the
// referrers API reads.
type referrersManifest struct {
	MediaType    string              `json:"mediaType"`
	ArtifactType string              `json:"artifactType"`
	Config       *ocispec.Descriptor `json:"config"`
	Subject      *ocispec.Descriptor `json:"subject"`
	Annotations  map[string]string   `json:"annotations"`
}

// referrers lists the manifests in repo whose subject is subject (an empty,
// non-nil list when there are none or the repository does not exist).
func (s *Server) referrers(ctx context.Context, repo reference.Named, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	descs := []ocispec.Descriptor{}
	repository, err := s.ns.Repository(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", repo, err)
	}
	ms, err := repository.Manifests(ctx)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s: %w", repo, err)
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, errors.New("referrers: manifest store cannot enumerate")
	}
	err = enum.Enumerate(ctx, func(d digest.Digest) error {
		m, err := ms.Get(ctx, d)
		if err != nil {
			return nil // deleted while we looked, or unreadable: not a referrer
		}
		mediaType, payload, err := m.Payload()
		if err != nil {
			return nil
		}
		var parsed referrersManifest
		if json.Unmarshal(payload, &parsed) != nil || parsed.Subject == nil || parsed.Subject.Digest != subject {
			return nil
		}
		desc := ocispec.Descriptor{
			MediaType:    mediaType,
			Digest:       d,
			Size:         int64(len(payload)),
			ArtifactType: parsed.ArtifactType,
			Annotations:  parsed.Annotations,
		}
		if desc.ArtifactType == "" && parsed.Config != nil && mediaType == ocispec.MediaTypeImageManifest {
			desc.ArtifactType = parsed.Config.MediaType
		}
		if artifactType != "" && desc.ArtifactType != artifactType {
			return nil
		}
		descs = append(descs, desc)
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if err != nil && !errors.As(err, &notFound) {
		return nil, fmt.Errorf("referrers of %s: %w", repo, err)
	}
	sort.Slice(descs, func(i, j int) bool { return descs[i].Digest < descs[j].Digest })
	return descs, nil
}

// putManifest passes a manifest push through and, when the manifest names a
// subject and the push succeeds, answers with the OCI-Subject header.
func (s *Server) putManifest(next http.Handler, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading manifest: "+err.Error())
		return
	}
	// Whatever lies past the limit still reaches distribution, which judges
	// the size itself.
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	var parsed referrersManifest
	if json.Unmarshal(body, &parsed) != nil || parsed.Subject == nil {
		next.ServeHTTP(w, r)
		return
	}
	next.ServeHTTP(&subjectHeaderWriter{ResponseWriter: w, subject: parsed.Subject.Digest.String()}, r)
}

// subjectHeaderWriter adds OCI-Subject to a 201 Created answer.
type subjectHeaderWriter struct {
	http.ResponseWriter
	subject string
}

func (sw *subjectHeaderWriter) WriteHeader(code int) {
	if code == http.StatusCreated {
		sw.Header().Set("OCI-Subject", sw.subject)
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *subjectHeaderWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// writeRegistryError answers with the distribution-spec error body.
func writeRegistryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": message}},
	})
}
