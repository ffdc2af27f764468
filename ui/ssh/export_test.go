package ssh

// EventSubscribers counts the sessions subscribed to the server's shared
// event stream.
func (s *Server) EventSubscribers() int { return s.events.subscribers() }

// StatsReads counts the sessions' shared reads of the daemon's stats.
func (s *Server) StatsReads() int64 { return s.stats.reads.Load() }
