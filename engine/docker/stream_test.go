package docker

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadJSONStream(t *testing.T) {
	tests := []struct {
		name, stream, wantOut, wantErr string
		wantAux                        int
	}{
		{
			name:    "build output and image ID",
			stream:  `{"stream":"Step 1/2 : FROM scratch\n"}` + "\n" + `{"aux":{"ID":"sha256:abc"}}` + "\n" + `{"stream":"Successfully built abc\n"}`,
			wantOut: "Step 1/2 : FROM scratch\nSuccessfully built abc\n",
			wantAux: 1,
		},
		{
			name:    "status lines, progress bars skipped",
			stream:  `{"status":"Preparing","id":"l1"}{"status":"Pushing","id":"l1","progress":"[==>  ]"}{"status":"latest: digest: sha256:d size: 1"}`,
			wantOut: "l1: Preparing\nlatest: digest: sha256:d size: 1\n",
		},
		{
			name:    "error field",
			stream:  `{"stream":"Step 2/2 : COPY x /\n"}{"error":"COPY failed: no x","errorDetail":{"message":"COPY failed: no x"}}{"stream":"never read"}`,
			wantOut: "Step 2/2 : COPY x /\n",
			wantErr: "COPY failed: no x",
		},
		{
			name:    "errorDetail alone",
			stream:  `{"errorDetail":{"message":"denied"}}`,
			wantErr: "denied",
		},
		{
			name:    "truncated stream",
			stream:  `{"stream":"half`,
			wantErr: "read the engine's progress stream",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			aux, err := readJSONStream(strings.NewReader(tt.stream), &out)
			if out.String() != tt.wantOut {
				t.Errorf("out = %q, want %q", out.String(), tt.wantOut)
			}
			if len(aux) != tt.wantAux {
				t.Errorf("aux = %q, want %d", aux, tt.wantAux)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}

	var streamErr *StreamError
	if _, err := readJSONStream(strings.NewReader(`{"error":"x"}`), nil); !errors.As(err, &streamErr) {
		t.Errorf("an error field gives %T, want *StreamError", err)
	}
}

func TestTarContext(t *testing.T) {
	r, err := TarContext([]TarFile{
		{Name: "Dockerfile", Body: []byte("FROM scratch\n")},
		{Name: "bin/app", Mode: 0o755, Body: []byte("#!")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	var got []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got = append(got, hdr.Name+" "+hdr.FileInfo().Mode().String()+" "+string(body))
	}
	want := []string{"Dockerfile -rw-r--r-- FROM scratch\n", "bin/app -rwxr-xr-x #!"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tar holds %q, want %q", got, want)
	}

	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x"} {
		if _, err := TarContext([]TarFile{{Name: bad}}); err == nil {
			t.Errorf("TarContext accepted name %q", bad)
		}
	}
}
