package docker

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// TarFile is one regular file of a build context.
type TarFile struct {
	Name string // slash-separated path inside the context, e.g. "Dockerfile"
	Mode int64  // permission bits; 0 means 0o644
	Body []byte
}

// TarContext makes an in-memory tar stream of files, fit to be a build
// context for BuildImage. Times are fixed so that the same files make the same
// stream, and the engine's build cache can recognise them.
func TarContext(files []TarFile) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name := path.Clean(f.Name)
		if f.Name == "" || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("tar context: %q is not a relative path inside the context", f.Name)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     mode,
			Size:     int64(len(f.Body)),
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar context: %s: %w", name, err)
		}
		if _, err := tw.Write(f.Body); err != nil {
			return nil, fmt.Errorf("tar context: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar context: %w", err)
	}
	return &buf, nil
}
