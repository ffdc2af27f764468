package edge

import "github.com/clank-dev/clank/internal/connpeek"

// peek looks, without blocking or consuming anything, whether the backend has sent
// anything on the idle connection c. The answer to a request must be the first byte
// read after it was written; a byte already waiting would be taken for it.
func (c *backendConn) peek() connState {
	if c.br.Buffered() > 0 {
		return connBytes
	}
	return connpeek.Peek(c.raw)
}
