package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// streamMessage is one line of the JSON streams that build, pull and push answer with.
type streamMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	ID          string `json:"id"`
	Progress    string `json:"progress"` // a progress bar, redrawn many times: not worth a line
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// readJSONStream reads a build, pull or push stream to its end. It writes the
// build output and status lines (not progress bars) to out (when not nil), collects the aux
// payloads, and fails on the first message that carries an error: the HTTP
// status of such a stream is 200 whether the operation worked or not.
func readJSONStream(r io.Reader, out io.Writer) ([]json.RawMessage, error) {
	var aux []json.RawMessage
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return aux, nil
		}
		if err != nil {
			return aux, fmt.Errorf("read the engine's progress stream: %w", err)
		}
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return aux, &StreamError{Message: msg}
		}
		if len(m.Aux) > 0 {
			aux = append(aux, m.Aux)
		}
		if out == nil || m.Progress != "" {
			continue
		}
		switch {
		case m.Stream != "":
			_, err = io.WriteString(out, m.Stream)
		case m.Status != "" && m.ID != "":
			_, err = fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
		case m.Status != "":
			_, err = fmt.Fprintln(out, m.Status)
		}
		if err != nil {
			return aux, fmt.Errorf("write progress: %w", err)
		}
	}
}

// StreamError is an error the engine reported inside a build, pull or push
// stream (a failed RUN, a missing file, a refused push, ...).
type StreamError struct {
	Message string
}

func (e *StreamError) Error() string { return e.Message }
